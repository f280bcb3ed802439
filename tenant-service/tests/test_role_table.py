"""The role table of API.md, walked action by action and role by role: each case builds a
fresh organization with one member per role and expects one status for the acting role."""
import uuid

import pytest

ROLES = ("member", "agent", "admin", "owner")


def expect(member, agent, admin, owner):
    return dict(zip(ROLES, (member, agent, admin, owner)))


async def invite(world, org, role):
    resp = await world.client.post(f"/v1/organizations/{org.id}/invitations", headers=org["owner"].auth,
                                   json={"email": f"i-{uuid.uuid4().hex[:10]}@example.com", "role": role})
    assert resp.status == 201
    return (await resp.json())["id"]


def patch_role(target_role, new_role):
    async def act(world, org, actor):
        target = await world.add_member(org, target_role)
        return await world.client.patch(f"/v1/organizations/{org.id}/members/{target.user_id}", headers=actor.auth,
                                        json={"role": new_role})
    return act


def remove(target_role):
    async def act(world, org, actor):
        target = await world.add_member(org, target_role)
        return await world.client.delete(f"/v1/organizations/{org.id}/members/{target.user_id}", headers=actor.auth)
    return act


def create_invitation(role):
    async def act(world, org, actor):
        return await world.client.post(f"/v1/organizations/{org.id}/invitations", headers=actor.auth,
                                       json={"email": f"i-{uuid.uuid4().hex[:10]}@example.com", "role": role})
    return act


def revoke_invitation(role):
    async def act(world, org, actor):
        inv = await invite(world, org, role)
        return await world.client.delete(f"/v1/organizations/{org.id}/invitations/{inv}", headers=actor.auth)
    return act


def simple(method, suffix="", body=None):
    async def act(world, org, actor):
        kw = {"json": body} if body is not None else {}
        return await world.client.request(method, f"/v1/organizations/{org.id}{suffix}", headers=actor.auth, **kw)
    return act


async def leave(world, org, actor):
    return await world.client.delete(f"/v1/organizations/{org.id}/members/{actor.user_id}", headers=actor.auth)


async def leave_with_second_owner(world, org, actor):
    await world.add_member(org, "owner")
    return await leave(world, org, actor)


TABLE = [
    ("get organization", simple("GET"), expect(200, 200, 200, 200)),
    ("list members", simple("GET", "/members"), expect(200, 200, 200, 200)),
    ("rename organization", simple("PATCH", body={"name": "Renamed"}), expect(403, 403, 200, 200)),
    ("delete organization", simple("DELETE"), expect(403, 403, 403, 204)),
    ("invite a member", create_invitation("member"), expect(403, 403, 201, 201)),
    ("invite an agent", create_invitation("agent"), expect(403, 403, 201, 201)),
    ("invite an admin", create_invitation("admin"), expect(403, 403, 403, 201)),
    ("invite an owner", create_invitation("owner"), expect(403, 403, 403, 201)),
    ("list invitations", simple("GET", "/invitations"), expect(403, 403, 200, 200)),
    ("revoke a member invitation", revoke_invitation("member"), expect(403, 403, 204, 204)),
    ("revoke an admin invitation", revoke_invitation("admin"), expect(403, 403, 403, 204)),
    ("member -> agent", patch_role("member", "agent"), expect(403, 403, 200, 200)),
    ("agent -> member", patch_role("agent", "member"), expect(403, 403, 200, 200)),
    ("member -> admin", patch_role("member", "admin"), expect(403, 403, 403, 200)),
    ("member -> owner", patch_role("member", "owner"), expect(403, 403, 403, 200)),
    ("admin -> agent", patch_role("admin", "agent"), expect(403, 403, 403, 200)),
    ("owner -> admin", patch_role("owner", "admin"), expect(403, 403, 403, 200)),
    ("remove a member", remove("member"), expect(403, 403, 204, 204)),
    ("remove an agent", remove("agent"), expect(403, 403, 204, 204)),
    ("remove an admin", remove("admin"), expect(403, 403, 403, 204)),
    ("remove another owner", remove("owner"), expect(403, 403, 403, 204)),
    ("leave", leave, expect(204, 204, 204, 409)),  # the sole owner cannot leave
    ("leave beside another owner", leave_with_second_owner, expect(204, 204, 204, 204)),
    ("read the audit log", simple("GET", "/audit-events"), expect(403, 403, 200, 200)),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name,action,expected", TABLE, ids=[t[0] for t in TABLE])
async def test_role_table(world, role, name, action, expected):
    org = await world.org()
    resp = await action(world, org, org[role])
    assert resp.status == expected[role], f"{name} as {role}: {await resp.text()}"
