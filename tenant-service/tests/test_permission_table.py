"""The permission table of API.md, walked action by action and role by role: each case builds
a fresh organization with one member per role and expects one status for the acting role.

Each action also names the permission it needs; the expected statuses of the built-in roles
must follow from the built-in permission sets (so the table cannot drift from the catalogue),
and a custom role holding exactly the role's permissions must get the same answers as the
built-in role (so checks ask for permissions, never for role names)."""
import uuid

import pytest

from shared import permissions as P

ROLES = ("member", "agent", "admin", "owner")


def expect(member, agent, admin, owner):
    return dict(zip(ROLES, (member, agent, admin, owner), strict=True))


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


def create_role(perms):
    async def act(world, org, actor):
        return await world.client.post(f"/v1/organizations/{org.id}/roles", headers=actor.auth,
                                       json={"name": f"r-{uuid.uuid4().hex[:8]}", "permissions": sorted(perms)})
    return act


def change_custom_role(perms):
    async def act(world, org, actor):
        role = await world.custom_role(org, perms)
        return await world.client.patch(f"/v1/organizations/{org.id}/roles/{role['id']}", headers=actor.auth,
                                        json={"description": "changed"})
    return act


def delete_custom_role(perms):
    async def act(world, org, actor):
        role = await world.custom_role(org, perms)
        return await world.client.delete(f"/v1/organizations/{org.id}/roles/{role['id']}", headers=actor.auth)
    return act


TRIAGE = {P.TICKETS_READ_ALL, P.TICKETS_TRIAGE}
INVITER = {P.MEMBERS_INVITE}  # admin level

# (action, its function, the permissions it needs, whether admin level is involved, statuses)
TABLE = [
    ("get organization", simple("GET"), set(), expect(200, 200, 200, 200)),
    ("list members", simple("GET", "/members"), {P.MEMBERS_READ}, expect(200, 200, 200, 200)),
    ("list roles", simple("GET", "/roles"), set(), expect(200, 200, 200, 200)),
    ("rename organization", simple("PATCH", body={"name": "Renamed"}), {P.ORGANIZATION_MANAGE},
     expect(403, 403, 200, 200)),
    ("delete organization", simple("DELETE"), {P.ORGANIZATION_DELETE}, expect(403, 403, 403, 204)),
    ("invite a member", create_invitation("member"), {P.MEMBERS_INVITE}, expect(403, 403, 201, 201)),
    ("invite an agent", create_invitation("agent"), {P.MEMBERS_INVITE}, expect(403, 403, 201, 201)),
    ("invite an admin", create_invitation("admin"), {P.MEMBERS_INVITE, P.ADMINS_MANAGE}, expect(403, 403, 403, 201)),
    ("invite an owner", create_invitation("owner"), {P.MEMBERS_INVITE, P.ADMINS_MANAGE}, expect(403, 403, 403, 201)),
    ("list invitations", simple("GET", "/invitations"), {P.MEMBERS_INVITE}, expect(403, 403, 200, 200)),
    ("revoke a member invitation", revoke_invitation("member"), {P.MEMBERS_INVITE}, expect(403, 403, 204, 204)),
    ("revoke an admin invitation", revoke_invitation("admin"), {P.MEMBERS_INVITE, P.ADMINS_MANAGE},
     expect(403, 403, 403, 204)),
    ("member -> agent", patch_role("member", "agent"), {P.MEMBERS_MANAGE}, expect(403, 403, 200, 200)),
    ("agent -> member", patch_role("agent", "member"), {P.MEMBERS_MANAGE}, expect(403, 403, 200, 200)),
    ("member -> admin", patch_role("member", "admin"), {P.MEMBERS_MANAGE, P.ADMINS_MANAGE},
     expect(403, 403, 403, 200)),
    ("member -> owner", patch_role("member", "owner"), {P.MEMBERS_MANAGE, P.ADMINS_MANAGE},
     expect(403, 403, 403, 200)),
    ("admin -> agent", patch_role("admin", "agent"), {P.MEMBERS_MANAGE, P.ADMINS_MANAGE},
     expect(403, 403, 403, 200)),
    ("owner -> admin", patch_role("owner", "admin"), {P.MEMBERS_MANAGE, P.ADMINS_MANAGE},
     expect(403, 403, 403, 200)),
    ("remove a member", remove("member"), {P.MEMBERS_MANAGE}, expect(403, 403, 204, 204)),
    ("remove an agent", remove("agent"), {P.MEMBERS_MANAGE}, expect(403, 403, 204, 204)),
    ("remove an admin", remove("admin"), {P.MEMBERS_MANAGE, P.ADMINS_MANAGE}, expect(403, 403, 403, 204)),
    ("remove another owner", remove("owner"), {P.MEMBERS_MANAGE, P.ADMINS_MANAGE}, expect(403, 403, 403, 204)),
    ("leave", leave, None, expect(204, 204, 204, 409)),  # the sole owner cannot leave
    ("leave beside another owner", leave_with_second_owner, set(), expect(204, 204, 204, 204)),
    ("read the audit log", simple("GET", "/audit-events"), {P.AUDIT_READ}, expect(403, 403, 200, 200)),
    ("create a triage role", create_role(TRIAGE), {P.ROLES_MANAGE} | TRIAGE, expect(403, 403, 201, 201)),
    ("create an inviter role", create_role(INVITER), {P.ROLES_MANAGE} | INVITER, expect(403, 403, 201, 201)),
    ("create an owner-level role", create_role({P.ADMINS_MANAGE}), {P.ROLES_MANAGE, P.ADMINS_MANAGE},
     expect(403, 403, 403, 201)),
    ("change a triage role", change_custom_role(TRIAGE), {P.ROLES_MANAGE} | TRIAGE, expect(403, 403, 200, 200)),
    ("change an inviter role", change_custom_role(INVITER), {P.ROLES_MANAGE, P.ADMINS_MANAGE} | INVITER,
     expect(403, 403, 403, 200)),
    ("delete a triage role", delete_custom_role(TRIAGE), {P.ROLES_MANAGE} | TRIAGE, expect(403, 403, 204, 204)),
    ("delete an inviter role", delete_custom_role(INVITER), {P.ROLES_MANAGE, P.ADMINS_MANAGE} | INVITER,
     expect(403, 403, 403, 204)),
]
IDS = [t[0] for t in TABLE]


@pytest.mark.parametrize("name,action,needs,expected", TABLE, ids=IDS)
def test_expectations_follow_from_the_builtin_sets(name, action, needs, expected):
    if needs is None:
        return  # "leave" depends on the last-owner rule, not on permissions
    for role in ROLES:
        allowed = needs <= P.BUILTIN_ROLES[role]
        assert (expected[role] < 400) == allowed, f"{name} as {role}"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name,action,needs,expected", TABLE, ids=IDS)
async def test_permission_table(world, role, name, action, needs, expected):
    org = await world.org()
    resp = await action(world, org, org[role])
    assert resp.status == expected[role], f"{name} as {role}: {await resp.text()}"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name,action,needs,expected", TABLE, ids=IDS)
async def test_a_custom_role_with_the_same_permissions_gets_the_same_answers(world, role, name, action, needs,
                                                                              expected):
    org = await world.org()
    twin = await world.custom_member(org, P.BUILTIN_ROLES[role])
    if role == "owner" and name == "leave":
        expected = {**expected, "owner": 204}  # a custom role is never the last owner
    resp = await action(world, org, twin)
    assert resp.status == expected[role], f"{name} as a copy of {role}: {await resp.text()}"
