"""The ticket rows of API.md's permission table, walked action by action and role by role
(the four built-in roles and a custom "triage" role holding tickets:read_all and
tickets:triage only). Each action names the permissions it needs; the expected statuses of the
built-in roles must follow from the built-in sets, so the table cannot drift from the catalogue."""
import uuid
from datetime import UTC, datetime

import pytest

from shared import permissions as P
from shared.messaging import Event

TRIAGE = frozenset({P.TICKETS_READ_ALL, P.TICKETS_TRIAGE})
ROLES = ("member", "agent", "admin", "owner", "triage")
PERMS = {**P.BUILTIN_ROLES, "triage": TRIAGE}


def expect(member, agent, admin, owner, triage):
    return dict(zip(ROLES, (member, agent, admin, owner, triage), strict=True))


async def others_ticket(api, org):
    requester = await org.user("member")
    return await api.create_ticket(requester, title="someone else's")


async def create(api, org, actor):
    return await api.client.post("/v1/tickets", json={"title": "mine"}, headers=actor.auth)


async def read_others(api, org, actor):
    return await api.get(actor, (await others_ticket(api, org))["id"])


async def list_sees_others(api, org, actor):
    ticket = await others_ticket(api, org)
    resp = await api.client.get("/v1/tickets", params={"limit": 100}, headers=actor.auth)
    if resp.status != 200:
        return resp
    ids = [t["id"] for t in (await resp.json())["items"]]
    return _Status(200 if ticket["id"] in ids else 404)


async def triage_others(api, org, actor):
    return await api.patch(actor, await others_ticket(api, org), {"status": "in_progress", "priority": "high"})


async def edit_others_title(api, org, actor):
    return await api.patch(actor, await others_ticket(api, org), {"title": "renamed"})


async def assign_others_to_self(api, org, actor):
    return await api.patch(actor, await others_ticket(api, org), {"assignee_id": str(actor.id)})


async def delete_others(api, org, actor):
    ticket = await others_ticket(api, org)
    return await api.client.delete(f"/v1/tickets/{ticket['id']}", headers=actor.auth)


async def restore_others(api, org, actor):
    ticket = await others_ticket(api, org)
    owner = await org.user("owner")
    assert (await api.client.delete(f"/v1/tickets/{ticket['id']}", headers=owner.auth)).status == 204
    return await api.client.post(f"/v1/tickets/{ticket['id']}/restore", headers=actor.auth)


async def comment_on_others(api, org, actor):
    ticket = await others_ticket(api, org)
    return await api.client.post(f"/v1/tickets/{ticket['id']}/comments", json={"body": "hi"}, headers=actor.auth)


async def internal_comment_on_others(api, org, actor):
    ticket = await others_ticket(api, org)
    return await api.client.post(f"/v1/tickets/{ticket['id']}/comments", json={"body": "psst", "internal": True},
                                 headers=actor.auth)


async def sees_internal_comments(api, org, actor):
    ticket = await others_ticket(api, org)
    owner = await org.user("owner")
    assert (await api.client.post(f"/v1/tickets/{ticket['id']}/comments", json={"body": "x", "internal": True},
                                  headers=owner.auth)).status == 201
    resp = await api.client.get(f"/v1/tickets/{ticket['id']}/comments", headers=actor.auth)
    if resp.status != 200:
        return resp
    return _Status(200 if any(c["internal"] for c in (await resp.json())["items"]) else 404)


class _Status:
    def __init__(self, status):
        self.status = status

    async def text(self):
        return ""


# (action, function, permissions needed, whether only "own" tickets need no more, statuses)
TABLE = [
    ("create a ticket", create, {P.TICKETS_CREATE}, expect(201, 201, 201, 201, 403)),
    ("read another's ticket", read_others, {P.TICKETS_READ_ALL}, expect(404, 200, 200, 200, 200)),
    ("list shows another's ticket", list_sees_others, {P.TICKETS_READ_ALL}, expect(404, 200, 200, 200, 200)),
    # refused on the fields before the ticket is looked up: 403 even for a ticket one cannot see
    ("triage another's ticket", triage_others, {P.TICKETS_READ_ALL, P.TICKETS_TRIAGE},
     expect(403, 200, 200, 200, 200)),
    ("edit another's title", edit_others_title, {P.TICKETS_READ_ALL, P.TICKETS_TRIAGE},
     expect(404, 200, 200, 200, 200)),
    ("delete another's ticket", delete_others, {P.TICKETS_DELETE}, expect(403, 403, 204, 204, 403)),
    ("restore another's ticket", restore_others, {P.TICKETS_DELETE}, expect(403, 403, 200, 200, 403)),
    ("comment on another's ticket", comment_on_others, {P.COMMENTS_CREATE, P.TICKETS_READ_ALL},
     expect(404, 201, 201, 201, 403)),
    ("internal comment on another's ticket", internal_comment_on_others,
     {P.COMMENTS_CREATE, P.COMMENTS_INTERNAL, P.TICKETS_READ_ALL}, expect(403, 201, 201, 201, 403)),
    ("see internal comments", sees_internal_comments, {P.COMMENTS_INTERNAL, P.TICKETS_READ_ALL},
     expect(404, 200, 200, 200, 404)),
]
IDS = [t[0] for t in TABLE]


@pytest.mark.parametrize("name,action,needs,expected", TABLE, ids=IDS)
def test_expectations_follow_from_the_permission_sets(name, action, needs, expected):
    for role in ROLES:
        assert (expected[role] < 400) == (needs <= PERMS[role]), f"{name} as {role}"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name,action,needs,expected", TABLE, ids=IDS)
async def test_permission_table(api, org, role, name, action, needs, expected):
    actor = await (org.custom(TRIAGE, "Triage") if role == "triage" else org.user(role))
    resp = await action(api, org, actor)
    assert resp.status == expected[role], f"{name} as {role}: {await resp.text()}"


async def test_own_tickets_for_members(api, org):
    """tickets:read_own: the requester sees, comments on and edits title and description of its
    own ticket, but not its status, priority, assignee or tags."""
    member = await org.user("member")
    ticket = await api.create_ticket(member)
    assert (await api.get(member, ticket["id"])).status == 200
    resp = await api.patch(member, ticket, {"title": "new", "description": "d"})
    assert resp.status == 200
    ticket = await resp.json()
    for field, value in (("status", "closed"), ("priority", "high"), ("tags", ["x"]),
                         ("assignee_id", str(uuid.uuid4()))):
        await api.problem(await api.patch(member, ticket, {field: value}), 403)
    assert (await api.client.post(f"/v1/tickets/{ticket['id']}/comments", json={"body": "hi"},
                                  headers=member.auth)).status == 201


async def test_a_role_without_ticket_reads_cannot_list(api, org):
    lister = await org.custom({P.MEMBERS_READ})
    await api.problem(await api.client.get("/v1/tickets", headers=lister.auth), 403)
    await api.problem(await api.client.post("/v1/tickets", json={"title": "x"}, headers=lister.auth), 403)


async def test_assignees_need_tickets_read_all_whatever_their_role_name(api, org):
    owner = await org.user("owner")
    ticket = await api.create_ticket(owner)
    watcher = await org.custom({P.TICKETS_READ_ALL}, "Watcher")
    helper = await org.custom({P.TICKETS_READ_OWN, P.TICKETS_CREATE}, "Helper")
    resp = await api.patch(owner, ticket, {"assignee_id": str(watcher.id)})
    assert resp.status == 200, await resp.text()
    ticket = await resp.json()
    await api.problem(await api.patch(owner, ticket, {"assignee_id": str(helper.id)}), 422)
    # the custom role is narrowed (role.updated): its holders are no longer assignable
    role_id = str(uuid.uuid4())
    role_event = Event(
        id=uuid.uuid4(), type="role.updated", occurred_at=datetime.now(UTC), source="tenant-service",
        tenant_id=org.id, actor={"user_id": None, "ip": None}, subject={"type": "role", "id": role_id},
        request_id="test",
        data={"role_id": role_id, "name": "Onlooker", "description": "", "permissions": [P.TICKETS_READ_OWN],
              "changes": {"name": ["Watcher", "Onlooker"],
                          "permissions": [[P.TICKETS_READ_ALL], [P.TICKETS_READ_OWN]]}})
    assert await org.consumer.process(role_event)
    another = await api.create_ticket(owner)
    await api.problem(await api.patch(owner, another, {"assignee_id": str(watcher.id)}), 422)
    async with api.pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(org.id))
        assert await conn.fetchval("SELECT role FROM membership WHERE user_id = $1", watcher.id) == "Onlooker"
