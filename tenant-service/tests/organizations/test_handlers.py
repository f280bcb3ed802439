"""Organization routes: create, list mine, get, update, soft delete, and their events."""
import uuid

import pytest

from shared.permissions import BUILTIN_ROLES


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


async def test_create_with_unscoped_token_makes_caller_owner(client, world, outbox):
    uid, _ = await world.user()
    rid = f"req-{uuid.uuid4().hex}"
    resp = await client.post("/v1/organizations", json={"name": "  Blue Whale Ltd  "},
                             headers={**bearer(world.token(uid)), "X-Request-ID": rid})
    assert resp.status == 201
    org = await resp.json()
    assert set(org) == {"id", "name", "slug", "created_at", "member_count"}
    assert org["name"] == "Blue Whale Ltd" and org["member_count"] == 1
    assert org["slug"].startswith("blue-whale-ltd") and org["created_at"].endswith("Z")
    events = await outbox(org["id"])
    assert [e["type"] for e in events] == ["organization.created", "membership.created"]
    assert all(e["request_id"] == rid and e["actor"]["user_id"] == str(uid) for e in events)
    assert events[1]["data"] == {"organization_id": org["id"], "user_id": str(uid), "role": "owner",
                                 "permissions": sorted(BUILTIN_ROLES["owner"])}

    mine = await (await client.get("/v1/organizations", headers=bearer(world.token(uid)))).json()
    assert mine == {"items": [{"id": org["id"], "name": "Blue Whale Ltd", "slug": org["slug"], "role": "owner"}],
                    "next_cursor": None}


async def test_explicit_slug_taken_is_409_and_derived_one_is_suffixed(client, world, problem):
    uid, _ = await world.user()
    slug = f"acme-{uuid.uuid4().hex[:8]}"
    first = await client.post("/v1/organizations", json={"name": "Acme", "slug": slug},
                              headers=bearer(world.token(uid)))
    assert first.status == 201 and (await first.json())["slug"] == slug
    await problem(await client.post("/v1/organizations", json={"name": "Other", "slug": slug},
                                    headers=bearer(world.token(uid))), 409)
    derived = await client.post("/v1/organizations", json={"name": slug.replace("-", " ")},
                                headers=bearer(world.token(uid)))
    assert (await derived.json())["slug"] == f"{slug}-2"


@pytest.mark.parametrize("body,field", [
    ({}, "name"), ({"name": ""}, "name"), ({"name": "   "}, "name"), ({"name": "x" * 101}, "name"),
    ({"name": "A", "slug": "Upper"}, "slug"), ({"name": "A", "slug": "has space"}, "slug"),
    ({"name": "A", "slug": "-lead"}, "slug"), ({"name": "A", "slug": "under_score"}, "slug"),
    ({"name": "A", "slug": "a" * 64}, "slug"), ({"name": "A", "slug": ""}, "slug"),
    ({"name": "A", "owner": "me"}, "owner"), ({"name": 5}, "name"),
])
async def test_create_validation(client, world, problem, body, field):
    uid, _ = await world.user()
    err = await problem(await client.post("/v1/organizations", json=body, headers=bearer(world.token(uid))), 422)
    assert field in [e["field"] for e in err["errors"]]


async def test_malformed_and_non_json_bodies(client, world, problem):
    headers = bearer(world.token(uuid.uuid4()))
    await problem(await client.post("/v1/organizations", data=b"{nope", headers={**headers,
                                    "Content-Type": "application/json"}), 400)
    await problem(await client.post("/v1/organizations", data=b"name=x", headers={**headers,
                                    "Content-Type": "application/x-www-form-urlencoded"}), 415)


async def test_get_shows_member_count(client, world):
    org = await world.org()
    resp = await client.get(f"/v1/organizations/{org.id}", headers=org["member"].auth)
    body = await resp.json()
    assert resp.status == 200 and body["member_count"] == 4 and body["id"] == str(org.id)


async def test_update_records_changes_and_checks_slug(client, world, outbox, problem):
    org = await world.org()
    other = await world.org(roles=("owner",))
    new_slug = f"renamed-{uuid.uuid4().hex[:8]}"
    resp = await client.patch(f"/v1/organizations/{org.id}", json={"name": "Renamed", "slug": new_slug},
                              headers=org["admin"].auth)
    assert resp.status == 200
    body = await resp.json()
    assert (body["name"], body["slug"], body["member_count"]) == ("Renamed", new_slug, 4)
    updated = await outbox(org.id, "organization.updated")
    assert updated[-1]["data"] == {"changes": {"name": [updated[-1]["data"]["changes"]["name"][0], "Renamed"],
                                               "slug": [org.slug, new_slug]}}
    await problem(await client.patch(f"/v1/organizations/{other.id}", json={"slug": new_slug},
                                     headers=other["owner"].auth), 409)
    await problem(await client.patch(f"/v1/organizations/{org.id}", json={"slug": "Bad Slug"},
                                     headers=org["owner"].auth), 422)
    # an empty or unchanged update answers the organization and records nothing
    same = await client.patch(f"/v1/organizations/{org.id}", json={"name": "Renamed"}, headers=org["owner"].auth)
    assert same.status == 200 and len(await outbox(org.id, "organization.updated")) == 1


async def test_soft_delete_hides_the_organization(client, world, outbox, problem, admin_db):
    org = await world.org()
    rid = f"req-{uuid.uuid4().hex}"
    resp = await client.delete(f"/v1/organizations/{org.id}", headers={**org["owner"].auth, "X-Request-ID": rid})
    assert resp.status == 204
    deleted = await outbox(org.id, "organization.deleted")
    assert len(deleted) == 1 and deleted[0]["data"] == {} and deleted[0]["request_id"] == rid
    assert deleted[0]["subject"] == {"type": "organization", "id": str(org.id)}
    for role in ("member", "owner"):
        await problem(await client.get(f"/v1/organizations/{org.id}", headers=org[role].auth), 404)
    await problem(await client.get(f"/v1/organizations/{org.id}/members", headers=org["owner"].auth), 404)
    await problem(await client.delete(f"/v1/organizations/{org.id}", headers=org["owner"].auth), 404)
    mine = await (await client.get("/v1/organizations", headers=org["member"].auth)).json()
    assert str(org.id) not in [i["id"] for i in mine["items"]]
    assert await admin_db.fetchval("SELECT deleted_at IS NOT NULL FROM tenant.organization WHERE id = $1", org.id)
    # the slug is free for a new organization
    uid, _ = await world.user()
    again = await client.post("/v1/organizations", json={"name": "x", "slug": org.slug},
                              headers=bearer(world.token(uid)))
    assert again.status == 201


async def test_list_mine_paginates_oldest_first(client, world, problem):
    uid, _ = await world.user()
    ids = []
    for i in range(5):
        resp = await client.post("/v1/organizations", json={"name": f"Pag {i}"}, headers=bearer(world.token(uid)))
        ids.append((await resp.json())["id"])
    seen, cursor = [], None
    while True:
        url = "/v1/organizations?limit=2" + (f"&cursor={cursor}" if cursor else "")
        body = await (await client.get(url, headers=bearer(world.token(uid)))).json()
        assert len(body["items"]) <= 2
        seen += [i["id"] for i in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    for bad in ("limit=0", "limit=101", "limit=x", "cursor=forged"):
        await problem(await client.get(f"/v1/organizations?{bad}", headers=bearer(world.token(uid))), 422)
