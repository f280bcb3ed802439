"""The internal routes auth-service calls (shared/README.md, "Internal routes")."""
import uuid

import pytest

from shared.permissions import BUILTIN_ROLES


def signup_body(**over):
    uid = over.pop("owner_user_id", uuid.uuid4())
    tag = uuid.uuid4().hex[:8]
    body = {"name": "Acme Support", "owner_user_id": str(uid), "owner_email": f"  Owner-{tag}@Example.COM ",
            "owner_name": "Olive Owner"}
    body.update(over)
    return body


@pytest.mark.parametrize("method,path", [
    ("GET", "/internal/users/{uid}/memberships"),
    ("POST", "/internal/organizations"),
    ("DELETE", "/internal/organizations/{uid}?owner_user_id={uid}"),
])
@pytest.mark.parametrize("token", [None, "wrong-token"])
async def test_internal_routes_need_the_internal_token(client, problem, method, path, token):
    uid = uuid.uuid4()
    headers = {"X-Internal-Token": token} if token else {}
    kw = {"json": signup_body(owner_user_id=uid)} if method == "POST" else {}
    resp = await client.request(method, path.format(uid=uid), headers=headers, **kw)
    await problem(resp, 401)


async def test_signup_organization_is_created_with_owner_profile_and_events(client, internal_headers, admin_db,
                                                                           outbox):
    body = signup_body()
    rid = f"req-{uuid.uuid4().hex}"
    resp = await client.post("/internal/organizations", json=body,
                             headers=internal_headers(**{"X-Request-ID": rid, "X-Client-IP": "203.0.113.9"}))
    assert resp.status == 201, await resp.text()
    org = await resp.json()
    assert set(org) == {"id", "name", "slug", "created_at"}
    assert org["name"] == "Acme Support" and org["slug"].startswith("acme-support")
    profile = await admin_db.fetchrow("SELECT email, name FROM tenant.user_profile WHERE user_id = $1",
                                      uuid.UUID(body["owner_user_id"]))
    assert dict(profile) == {"email": body["owner_email"].strip().lower(), "name": "Olive Owner"}

    events = await outbox(org["id"])
    assert [e["type"] for e in events] == ["organization.created", "membership.created"]
    created, membership = events
    assert created["data"] == {"name": "Acme Support", "slug": org["slug"]}
    assert created["subject"] == {"type": "organization", "id": org["id"]}
    assert membership["subject"] == {"type": "membership", "id": f"{org['id']}:{body['owner_user_id']}"}
    assert membership["data"] == {"organization_id": org["id"], "user_id": body["owner_user_id"], "role": "owner",
                                  "permissions": sorted(BUILTIN_ROLES["owner"])}
    for e in events:
        assert e["request_id"] == rid and e["source"] == "tenant-service" and e["tenant_id"] == org["id"]
        assert e["actor"] == {"user_id": body["owner_user_id"], "ip": "203.0.113.9"}

    resp = await client.get(f"/internal/users/{body['owner_user_id']}/memberships", headers=internal_headers())
    assert resp.status == 200
    items = (await resp.json())["items"]
    assert [(i["organization_id"], i["role"]) for i in items] == [(org["id"], "owner")]


async def test_signup_organization_is_idempotent_per_owner(client, internal_headers, admin_db, outbox):
    body = signup_body()
    first = await client.post("/internal/organizations", json=body, headers=internal_headers())
    again = await client.post("/internal/organizations", json={**body, "name": "Other Name"},
                              headers=internal_headers())
    assert first.status == again.status == 201
    assert await first.json() == await again.json()
    org_id = (await first.json())["id"]
    assert await admin_db.fetchval("SELECT count(*) FROM tenant.organization WHERE signup_user_id = $1",
                                   uuid.UUID(body["owner_user_id"])) == 1
    assert len(await outbox(org_id, "organization.created")) == 1


async def test_derived_slug_gets_a_suffix_when_taken(client, internal_headers):
    name = f"Same Name {uuid.uuid4().hex[:6]}"
    slugs = []
    for _ in range(3):
        resp = await client.post("/internal/organizations", json=signup_body(name=name), headers=internal_headers())
        assert resp.status == 201
        slugs.append((await resp.json())["slug"])
    base = slugs[0]
    assert slugs == [base, f"{base}-2", f"{base}-3"]


@pytest.mark.parametrize("change", [
    {"owner_email": "not-an-email"}, {"name": ""}, {"owner_user_id": "nope"}, {"owner_name": "  "},
    {"unexpected": 1},
])
async def test_signup_organization_validation(client, internal_headers, problem, change):
    resp = await client.post("/internal/organizations", json=signup_body(**change), headers=internal_headers())
    body = await problem(resp, 422)
    assert body["errors"]


async def test_memberships_are_oldest_first_and_live_only(client, internal_headers, world):
    a = await world.org(roles=("owner",))
    b = await world.org(roles=("owner", "agent"))
    c = await world.org(roles=("owner",))
    user = b["agent"].user_id
    for org, role in ((c, "admin"), (a, "member")):
        await world.admin_db.execute(
            "INSERT INTO tenant.membership (organization_id, user_id, role) VALUES ($1, $2, $3)", org.id, user, role)
    resp = await client.get(f"/internal/users/{user}/memberships", headers=internal_headers())
    items = (await resp.json())["items"]
    assert [(i["organization_id"], i["role"]) for i in items] == [
        (str(b.id), "agent"), (str(c.id), "admin"), (str(a.id), "member")]
    assert await client.delete(f"/v1/organizations/{c.id}", headers=c["owner"].auth) is not None
    resp = await client.get(f"/internal/users/{user}/memberships", headers=internal_headers())
    assert [i["organization_id"] for i in (await resp.json())["items"]] == [str(b.id), str(a.id)]


async def test_memberships_of_unknown_user_is_empty_and_bad_id_404(client, internal_headers, problem):
    resp = await client.get(f"/internal/users/{uuid.uuid4()}/memberships", headers=internal_headers())
    assert resp.status == 200 and await resp.json() == {"items": []}
    await problem(await client.get("/internal/users/not-a-uuid/memberships", headers=internal_headers()), 404)


async def test_compensation_hard_deletes_and_can_be_retried(client, internal_headers, admin_db, outbox):
    body = signup_body(name=f"Failed Signup {uuid.uuid4().hex[:8]}")
    org = await (await client.post("/internal/organizations", json=body, headers=internal_headers())).json()
    path = f"/internal/organizations/{org['id']}?owner_user_id={body['owner_user_id']}"
    resp = await client.delete(path, headers=internal_headers())
    assert resp.status == 204
    assert await admin_db.fetchval("SELECT count(*) FROM tenant.organization WHERE id = $1", uuid.UUID(org["id"])) == 0
    assert await admin_db.fetchval("SELECT count(*) FROM tenant.membership WHERE organization_id = $1",
                                   uuid.UUID(org["id"])) == 0
    types = [e["type"] for e in await outbox(org["id"])]
    assert types[-2:] == ["membership.removed", "organization.deleted"]
    assert (await client.delete(path, headers=internal_headers())).status == 204
    # the slug and the idempotency key are free again: a new signup creates a new organization
    again = await (await client.post("/internal/organizations", json=body, headers=internal_headers())).json()
    assert again["id"] != org["id"] and again["slug"] == org["slug"]


async def test_compensation_refuses_a_real_organization(client, internal_headers, admin_db, problem):
    body = signup_body()
    org = await (await client.post("/internal/organizations", json=body, headers=internal_headers())).json()
    other = uuid.uuid4()
    resp = await client.delete(f"/internal/organizations/{org['id']}?owner_user_id={other}", headers=internal_headers())
    await problem(resp, 409)
    await admin_db.execute("INSERT INTO tenant.membership (organization_id, user_id, role) VALUES ($1, $2, 'member')",
                           uuid.UUID(org["id"]), other)
    resp = await client.delete(f"/internal/organizations/{org['id']}?owner_user_id={body['owner_user_id']}",
                               headers=internal_headers())
    await problem(resp, 409)
    assert await admin_db.fetchval("SELECT count(*) FROM tenant.organization WHERE id = $1", uuid.UUID(org["id"])) == 1
    resp = await client.delete(f"/internal/organizations/{org['id']}", headers=internal_headers())
    await problem(resp, 422)
