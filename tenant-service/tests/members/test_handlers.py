"""Member routes: listing, role changes, removal, the last-owner rule, and tokens that
outlived the membership they were issued for."""
import uuid

import pytest

from shared.permissions import BUILTIN_ROLES


async def test_list_members_with_profiles_and_pagination(client, world, problem):
    org = await world.org()
    ghost = uuid.uuid4()  # joined before their profile reached this service
    await world.admin_db.execute(
        "INSERT INTO tenant.membership (organization_id, user_id, role) VALUES ($1, $2, 'member')", org.id, ghost)
    first = await (await client.get(f"/v1/organizations/{org.id}/members?limit=3", headers=org["member"].auth)).json()
    assert [m["role"] for m in first["items"]] == ["owner", "admin", "agent"]
    assert first["items"][0] == {"user_id": str(org["owner"].user_id), "email": org["owner"].email,
                                 "name": "Test User", "role": "owner", "joined_at": first["items"][0]["joined_at"]}
    rest = await (await client.get(f"/v1/organizations/{org.id}/members?limit=3&cursor={first['next_cursor']}",
                                   headers=org["member"].auth)).json()
    assert [(m["user_id"], m["email"]) for m in rest["items"]] == [(str(org["member"].user_id), org["member"].email),
                                                                   (str(ghost), None)]
    assert rest["next_cursor"] is None
    await problem(await client.get(f"/v1/organizations/{org.id}/members?limit=500", headers=org["member"].auth), 422)


async def test_role_change_answers_member_and_emits_event(client, world, outbox):
    org = await world.org()
    rid = f"req-{uuid.uuid4().hex}"
    resp = await client.patch(f"/v1/organizations/{org.id}/members/{org['member'].user_id}", json={"role": "agent"},
                              headers={**org["admin"].auth, "X-Request-ID": rid})
    assert resp.status == 200
    body = await resp.json()
    assert (body["user_id"], body["role"], body["email"]) == (str(org["member"].user_id), "agent", org["member"].email)
    [event] = await outbox(org.id, "membership.role_changed")
    assert event["data"] == {"organization_id": str(org.id), "user_id": str(org["member"].user_id),
                             "old_role": "member", "role": "agent",
                             "permissions": sorted(BUILTIN_ROLES["agent"])}
    assert event["subject"] == {"type": "membership", "id": f"{org.id}:{org['member'].user_id}"}
    assert event["actor"]["user_id"] == str(org["admin"].user_id) and event["request_id"] == rid
    # setting the same role again changes nothing and records nothing
    again = await client.patch(f"/v1/organizations/{org.id}/members/{org['member'].user_id}", json={"role": "agent"},
                               headers=org["admin"].auth)
    assert again.status == 200 and len(await outbox(org.id, "membership.role_changed")) == 1


async def test_removal_emits_event(client, world, outbox):
    org = await world.org()
    resp = await client.delete(f"/v1/organizations/{org.id}/members/{org['agent'].user_id}", headers=org["admin"].auth)
    assert resp.status == 204
    [event] = await outbox(org.id, "membership.removed")
    assert event["data"] == {"organization_id": str(org.id), "user_id": str(org["agent"].user_id), "role": "agent"}
    members = await (await client.get(f"/v1/organizations/{org.id}/members", headers=org["owner"].auth)).json()
    assert str(org["agent"].user_id) not in [m["user_id"] for m in members["items"]]


async def test_last_owner_cannot_be_demoted_or_leave(client, world, problem):
    org = await world.org()
    owner = org["owner"]
    path = f"/v1/organizations/{org.id}/members/{owner.user_id}"
    await problem(await client.patch(path, json={"role": "admin"}, headers=owner.auth), 409)
    await problem(await client.delete(path, headers=owner.auth), 409)
    # with a second owner, the first may step down, and then the second is the last one
    second = await world.add_member(org, "owner")
    resp = await client.patch(path, json={"role": "admin"}, headers=owner.auth)
    assert resp.status == 200 and (await resp.json())["role"] == "admin"
    await problem(await client.delete(f"/v1/organizations/{org.id}/members/{second.user_id}", headers=second.auth), 409)


async def test_unknown_or_foreign_member_is_404(client, world, problem):
    org = await world.org()
    other = await world.org()
    for user_id in (uuid.uuid4(), other["member"].user_id, "not-a-uuid"):
        path = f"/v1/organizations/{org.id}/members/{user_id}"
        await problem(await client.patch(path, json={"role": "agent"}, headers=org["owner"].auth), 404)
        await problem(await client.delete(path, headers=org["owner"].auth), 404)


@pytest.mark.parametrize("body", [{"role": "superuser"}, {}, {"role": None}, {"role": "agent", "x": 1}])
async def test_role_change_validation(client, world, problem, body):
    org = await world.org()
    await problem(await client.patch(f"/v1/organizations/{org.id}/members/{org['member'].user_id}", json=body,
                                     headers=org["owner"].auth), 422)


async def test_removed_members_still_valid_token_cannot_write(client, world, problem):
    org = await world.org()
    admin = org["admin"]
    resp = await client.delete(f"/v1/organizations/{org.id}/members/{admin.user_id}", headers=org["owner"].auth)
    assert resp.status == 204
    # the token is still signed and unexpired: the write is refused against the database
    body = await problem(await client.patch(f"/v1/organizations/{org.id}", json={"name": "Hijack"},
                                            headers=admin.auth), 403)
    assert "no longer a member" in body["detail"]
    await problem(await client.post(f"/v1/organizations/{org.id}/invitations", headers=admin.auth,
                                    json={"email": "x@example.com", "role": "member"}), 403)


async def test_demoted_admins_token_acts_with_the_weaker_role(client, world, problem):
    org = await world.org()
    admin = org["admin"]
    resp = await client.patch(f"/v1/organizations/{org.id}/members/{admin.user_id}", json={"role": "member"},
                              headers=org["owner"].auth)
    assert resp.status == 200
    await problem(await client.delete(f"/v1/organizations/{org.id}/members/{org['member'].user_id}",
                                      headers=admin.auth), 403)
    # a promotion needs a fresh token: the old member-role token is not enough
    member = org["member"]
    await client.patch(f"/v1/organizations/{org.id}/members/{member.user_id}", json={"role": "admin"},
                       headers=org["owner"].auth)
    await problem(await client.patch(f"/v1/organizations/{org.id}", json={"name": "x"}, headers=member.auth), 403)
    fresh = {"Authorization": f"Bearer {world.token(member.user_id, org.id, 'admin')}"}
    assert (await client.patch(f"/v1/organizations/{org.id}", json={"name": "x"}, headers=fresh)).status == 200
