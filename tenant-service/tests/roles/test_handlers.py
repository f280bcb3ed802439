"""Custom roles: the catalogue, listing, creation and its refusals, changes, deletion while
held, custom role names in invitations and role changes, permissions in the internal
memberships answer, and writes with a token whose role was narrowed since it was issued."""
import asyncio
import uuid

import pytest

from shared import permissions as P

TRIAGE = sorted({P.TICKETS_READ_ALL, P.TICKETS_TRIAGE})


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


async def create(client, org, actor="owner", **body):
    body.setdefault("name", f"Triage {uuid.uuid4().hex[:6]}")
    body.setdefault("permissions", TRIAGE)
    return await client.post(f"/v1/organizations/{org.id}/roles", json=body, headers=org[actor].auth)


async def test_the_catalogue_is_served_to_any_signed_in_caller(client, world, problem):
    resp = await client.get("/v1/permissions", headers=bearer(world.token(uuid.uuid4())))
    assert resp.status == 200
    items = (await resp.json())["items"]
    assert [i["name"] for i in items] == [p.name for p in P.CATALOGUE]
    assert all(set(i) == {"name", "description"} and i["description"] for i in items)
    await problem(await client.get("/v1/permissions"), 401)


def test_the_builtin_sets_are_the_contract_table():
    row1 = {"tickets:create", "tickets:read_own", "comments:create", "members:read"}
    row2 = {"tickets:read_all", "tickets:triage", "comments:internal"}
    row3 = {"tickets:delete", "members:invite", "members:manage", "roles:manage", "api_keys:manage", "audit:read",
            "organization:manage"}
    row4 = {"organization:delete", "admins:manage"}
    assert P.BUILTIN_ROLES == {"member": row1, "agent": row1 | row2, "admin": row1 | row2 | row3,
                               "owner": row1 | row2 | row3 | row4}
    assert P.NAMES == row1 | row2 | row3 | row4 and len(P.CATALOGUE) == len(P.NAMES)
    assert list(P.BUILTIN_ROLES) == ["member", "agent", "admin", "owner"]


async def test_list_has_builtin_then_custom_roles_and_pages(client, world, problem):
    org = await world.org()
    made = [await (await create(client, org, name=f"Custom {i}")).json() for i in range(3)]
    resp = await client.get(f"/v1/organizations/{org.id}/roles?limit=5", headers=org["member"].auth)
    assert resp.status == 200
    first = await resp.json()
    assert [r["name"] for r in first["items"]] == ["member", "agent", "admin", "owner", "Custom 0"]
    assert all(r["builtin"] for r in first["items"][:4]) and not first["items"][4]["builtin"]
    assert first["items"][3]["permissions"] == sorted(P.BUILTIN_ROLES["owner"])
    assert set(first["items"][0]) == {"id", "name", "description", "permissions", "builtin"}
    second = await (await client.get(f"/v1/organizations/{org.id}/roles?limit=5&cursor={first['next_cursor']}",
                                     headers=org["member"].auth)).json()
    assert [r["id"] for r in second["items"]] == [m["id"] for m in made[1:]] and second["next_cursor"] is None
    await problem(await client.get(f"/v1/organizations/{org.id}/roles?cursor=forged", headers=org["member"].auth),
                  422)
    other = await world.org()
    await problem(await client.get(f"/v1/organizations/{other.id}/roles", headers=org["owner"].auth), 404)


async def test_create_answers_the_role_and_emits_role_created(client, world, outbox):
    org = await world.org()
    resp = await create(client, org, actor="admin", name="  Triage lead ", description="Sorts the queue",
                        permissions=[P.TICKETS_TRIAGE, P.TICKETS_READ_ALL, P.TICKETS_TRIAGE])
    assert resp.status == 201, await resp.text()
    role = await resp.json()
    assert role["name"] == "Triage lead" and role["permissions"] == TRIAGE and role["builtin"] is False
    assert role["description"] == "Sorts the queue"
    [event] = await outbox(org.id, "role.created")
    assert event["subject"] == {"type": "role", "id": role["id"]}
    assert event["actor"]["user_id"] == str(org["admin"].user_id)
    assert event["data"] == {"role_id": role["id"], "name": "Triage lead", "description": "Sorts the queue",
                             "permissions": TRIAGE}


async def test_create_refuses_permissions_the_caller_lacks(client, world, problem, outbox):
    org = await world.org()
    body = await problem(await create(client, org, actor="admin", permissions=[P.TICKETS_READ_ALL, P.ADMINS_MANAGE]),
                         403)
    assert body["type"].endswith("/role-beyond-caller") and "admins:manage" in body["detail"]
    # a custom role holder with roles:manage cannot exceed its own set either
    maker = await world.custom_member(org, {P.ROLES_MANAGE, P.TICKETS_READ_ALL})
    org.members["maker"] = maker
    await problem(await create(client, org, actor="maker", permissions=TRIAGE), 403)
    assert (await create(client, org, actor="maker", permissions=[P.TICKETS_READ_ALL])).status == 201
    # a token claiming more than the stored role grants does not help either
    org.members["liar"] = type(maker)(maker.user_id, maker.email, maker.role,
                                      world.token(maker.user_id, org.id, maker.role,
                                                  {P.ROLES_MANAGE, P.TICKETS_READ_ALL, P.TICKETS_TRIAGE}))
    await problem(await create(client, org, actor="liar", permissions=TRIAGE), 403)
    assert len(await outbox(org.id, "role.created")) == 1


@pytest.mark.parametrize("name", ["Owner", "admin", " AGENT ", "member", "staff"])
async def test_create_refuses_builtin_names(client, world, problem, name):
    org = await world.org()
    body = await problem(await create(client, org, name=name), 409)
    assert body["type"].endswith("/role-name-taken")


async def test_create_refuses_a_name_taken_in_any_case_but_not_in_another_organization(client, world, problem):
    org, other = await world.org(), await world.org()
    assert (await create(client, org, name="Billing")).status == 201
    body = await problem(await create(client, org, name="bILLING"), 409)
    assert body["type"].endswith("/role-name-taken")
    assert (await create(client, other, name="Billing")).status == 201


async def test_concurrent_creations_of_one_name_make_one_role(client, world):
    org = await world.org()
    for _ in range(3):
        name = f"race-{uuid.uuid4().hex[:6]}"
        answers = await asyncio.gather(*[create(client, org, name=name) for _ in range(8)])
        assert sorted(r.status for r in answers) == [201] + [409] * 7


@pytest.mark.parametrize("body,field", [
    ({"name": "x", "permissions": ["tickets:fly"]}, "permissions"),
    ({"name": "x", "permissions": "tickets:triage"}, "permissions"),
    ({"name": "", "permissions": []}, "name"),
    ({"name": "a" * 51, "permissions": []}, "name"),
    ({"name": "a:b", "permissions": []}, "name"),
    ({"permissions": []}, "name"),
    ({"name": "x", "permissions": [], "builtin": True}, "builtin"),
])
async def test_create_validates(client, world, problem, body, field):
    org = await world.org()
    resp = await client.post(f"/v1/organizations/{org.id}/roles", json=body, headers=org["owner"].auth)
    problem_body = await problem(resp, 422)
    assert field in [e["field"] for e in problem_body["errors"]]


async def test_builtin_roles_cannot_be_changed_or_deleted(client, world, problem):
    org = await world.org()
    roles = (await (await client.get(f"/v1/organizations/{org.id}/roles", headers=org["owner"].auth)).json())["items"]
    for role in roles[:4]:
        path = f"/v1/organizations/{org.id}/roles/{role['id']}"
        body = await problem(await client.patch(path, json={"description": "x"}, headers=org["owner"].auth), 409)
        assert body["type"].endswith("/builtin-role-immutable")
        await problem(await client.delete(path, headers=org["owner"].auth), 409)
    await problem(await client.delete(f"/v1/organizations/{org.id}/roles/{uuid.uuid4()}",
                                      headers=org["owner"].auth), 404)
    # another organization's role does not exist here
    other = await world.org()
    theirs = await (await create(client, other)).json()
    await problem(await client.patch(f"/v1/organizations/{org.id}/roles/{theirs['id']}", json={"name": "y"},
                                     headers=org["owner"].auth), 404)


async def test_rename_and_narrow_carry_holders_and_emit_changes(client, world, admin_db, outbox, internal_headers):
    org = await world.org()
    role = await (await create(client, org, name="Triage")).json()
    holder = await world.add_member(org, "Triage")
    email = f"inv-{uuid.uuid4().hex[:8]}@example.com"
    assert (await client.post(f"/v1/organizations/{org.id}/invitations", json={"email": email, "role": "triage"},
                              headers=org["owner"].auth)).status == 201
    resp = await client.patch(f"/v1/organizations/{org.id}/roles/{role['id']}",
                              json={"name": "Sorter", "permissions": [P.TICKETS_READ_ALL]}, headers=org["admin"].auth)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["permissions"] == [P.TICKETS_READ_ALL]
    assert await admin_db.fetchval("SELECT role FROM tenant.membership WHERE user_id = $1", holder.user_id) == "Sorter"
    assert await admin_db.fetchval("SELECT role FROM tenant.invitation WHERE email = $1", email) == "Sorter"
    [event] = await outbox(org.id, "role.updated")
    assert event["data"]["changes"] == {"name": ["Triage", "Sorter"], "permissions": [TRIAGE, [P.TICKETS_READ_ALL]]}
    assert event["data"]["name"] == "Sorter" and event["data"]["role_id"] == role["id"]
    items = (await (await client.get(f"/internal/users/{holder.user_id}/memberships",
                                     headers=internal_headers())).json())["items"]
    assert [(i["role"], i["permissions"]) for i in items] == [("Sorter", [P.TICKETS_READ_ALL])]
    # no change, no event
    same = await client.patch(f"/v1/organizations/{org.id}/roles/{role['id']}", json={"name": "Sorter"},
                              headers=org["admin"].auth)
    assert same.status == 200 and len(await outbox(org.id, "role.updated")) == 1


async def test_change_refusals(client, world, problem):
    org = await world.org()
    inviter = await (await create(client, org, name="Inviter", permissions=[P.MEMBERS_INVITE])).json()
    triage = await (await create(client, org, name="T2")).json()
    path = f"/v1/organizations/{org.id}/roles"
    # an admin cannot touch an admin-level role, nor make one admin level, nor widen beyond itself
    await problem(await client.patch(f"{path}/{inviter['id']}", json={"description": "x"},
                                     headers=org["admin"].auth), 403)
    await problem(await client.patch(f"{path}/{triage['id']}", json={"permissions": [P.MEMBERS_INVITE]},
                                     headers=org["admin"].auth), 403)
    await problem(await client.patch(f"{path}/{triage['id']}", json={"permissions": [P.ADMINS_MANAGE]},
                                     headers=org["admin"].auth), 403)
    await problem(await client.patch(f"{path}/{triage['id']}", json={"name": "Inviter"},
                                     headers=org["owner"].auth), 409)
    await problem(await client.patch(f"{path}/{triage['id']}", json={"name": "Owner"}, headers=org["owner"].auth), 409)
    await problem(await client.patch(f"{path}/{triage['id']}", json={"description": "x"},
                                     headers=org["agent"].auth), 403)
    ok = await client.patch(f"{path}/{triage['id']}", json={"name": "t2"}, headers=org["owner"].auth)
    assert ok.status == 200  # a change of letter case only


async def test_delete_refused_while_held_or_invited_then_allowed(client, world, problem, outbox):
    org = await world.org()
    role = await (await create(client, org, name="Temp")).json()
    path = f"/v1/organizations/{org.id}/roles/{role['id']}"
    holder = await world.add_member(org, "Temp")
    body = await problem(await client.delete(path, headers=org["admin"].auth), 409)
    assert body["type"].endswith("/role-in-use")
    assert (await client.patch(f"/v1/organizations/{org.id}/members/{holder.user_id}", json={"role": "member"},
                               headers=org["admin"].auth)).status == 200
    inv = await (await client.post(f"/v1/organizations/{org.id}/invitations",
                                   json={"email": f"d-{uuid.uuid4().hex[:6]}@example.com", "role": "Temp"},
                                   headers=org["admin"].auth)).json()
    await problem(await client.delete(path, headers=org["admin"].auth), 409)
    assert (await client.delete(f"/v1/organizations/{org.id}/invitations/{inv['id']}",
                                headers=org["admin"].auth)).status == 204
    assert (await client.delete(path, headers=org["admin"].auth)).status == 204
    await problem(await client.delete(path, headers=org["admin"].auth), 404)
    [event] = await outbox(org.id, "role.deleted")
    assert event["data"] == {"role_id": role["id"], "name": "Temp", "description": "", "permissions": TRIAGE}


async def test_delete_races_grants_without_leaving_a_dangling_role(client, world, admin_db):
    """Many concurrent grants of a role against its deletion: whoever wins, no member ever
    holds a role that no longer exists."""
    for _ in range(3):
        org = await world.org()
        role = await (await create(client, org, name=f"Racy-{uuid.uuid4().hex[:4]}")).json()
        targets = [await world.add_member(org, "member") for _ in range(6)]
        grants = [client.patch(f"/v1/organizations/{org.id}/members/{t.user_id}", json={"role": role["name"]},
                               headers=org["owner"].auth) for t in targets]
        deletion = client.delete(f"/v1/organizations/{org.id}/roles/{role['id']}", headers=org["owner"].auth)
        answers = await asyncio.gather(deletion, *grants)
        deleted = answers[0].status == 204
        assert answers[0].status in (204, 409)
        held = await admin_db.fetchval("SELECT count(*) FROM tenant.membership WHERE organization_id = $1 "
                                       "AND role = $2", org.id, role["name"])
        exists = await admin_db.fetchval("SELECT count(*) FROM tenant.custom_role WHERE id = $1",
                                         uuid.UUID(role["id"]))
        assert not (held and not exists)
        assert exists == (0 if deleted else 1)


async def test_invite_and_change_role_accept_custom_names(client, world, admin_db, outbox, problem):
    org = await world.org()
    await create(client, org, name="Triage Team")
    uid = uuid.uuid4()
    email = f"c-{uid.hex[:10]}@example.com"
    await world.profile(uid, email)
    inv = await (await client.post(f"/v1/organizations/{org.id}/invitations", json={"email": email,
                                   "role": "triage team"}, headers=org["admin"].auth)).json()
    assert inv["role"] == "Triage Team"
    resp = await client.post("/v1/invitations/accept", json={"token": inv["token"]}, headers=bearer(world.token(uid)))
    assert resp.status == 200 and (await resp.json())["role"] == "Triage Team"
    created = [e for e in await outbox(org.id, "membership.created") if e["data"]["user_id"] == str(uid)]
    assert created[0]["data"]["permissions"] == TRIAGE
    resp = await client.patch(f"/v1/organizations/{org.id}/members/{org['member'].user_id}",
                              json={"role": "Triage Team"}, headers=org["admin"].auth)
    assert resp.status == 200 and (await resp.json())["role"] == "Triage Team"
    for bad in ("Nobody", "staff"):
        body = await problem(await client.patch(f"/v1/organizations/{org.id}/members/{org['agent'].user_id}",
                                                json={"role": bad}, headers=org["admin"].auth), 422)
        assert [e["field"] for e in body["errors"]] == ["role"]
    # an admin-level custom role is granted only with admins:manage
    await create(client, org, name="Recruiter", permissions=[P.MEMBERS_INVITE])
    await problem(await client.patch(f"/v1/organizations/{org.id}/members/{org['agent'].user_id}",
                                     json={"role": "Recruiter"}, headers=org["admin"].auth), 403)
    assert (await client.patch(f"/v1/organizations/{org.id}/members/{org['agent'].user_id}",
                               json={"role": "Recruiter"}, headers=org["owner"].auth)).status == 200


async def test_a_narrowed_role_stops_writes_with_an_older_token(client, world, problem):
    """The token still says roles:manage; the stored role no longer grants it: 403 at once,
    before the token itself is refused."""
    org = await world.org()
    manager = await world.custom_member(org, {P.ROLES_MANAGE, P.TICKETS_READ_ALL})
    org.members["manager"] = manager
    assert (await create(client, org, actor="manager", permissions=[P.TICKETS_READ_ALL])).status == 201
    role_id = await world.admin_db.fetchval("SELECT id FROM tenant.custom_role WHERE name = $1", manager.role)
    resp = await client.patch(f"/v1/organizations/{org.id}/roles/{role_id}",
                              json={"permissions": [P.TICKETS_READ_ALL]}, headers=org["owner"].auth)
    assert resp.status == 200
    body = await problem(await create(client, org, actor="manager", permissions=[P.TICKETS_READ_ALL]), 403)
    assert body["type"].endswith("/permission-missing")
