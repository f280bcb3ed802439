"""PATCH /v1/tickets/{id}: If-Match, roles, the status table, assignee, events, concurrency."""
import asyncio
import itertools
import uuid

STATUSES = ["open", "in_progress", "pending", "resolved", "closed"]
ALLOWED = {
    "open": {"in_progress", "pending", "resolved", "closed"},
    "in_progress": {"open", "pending", "resolved", "closed"},
    "pending": {"open", "in_progress", "resolved", "closed"},
    "resolved": {"open", "closed"},
    "closed": {"open"},
}
# A path from "open" to each status through allowed moves.
PATH = {"open": [], "in_progress": ["in_progress"], "pending": ["pending"], "resolved": ["resolved"],
        "closed": ["closed"]}


async def test_patch_changes_fields_bumps_version_and_emits_changes(api, org):
    agent = await org.user("agent")
    t = await api.create_ticket(agent, title="old", tags=["a"])
    resp = await api.patch(agent, t, {"title": "new", "priority": "urgent", "tags": ["b", "c"],
                                      "assignee_id": str(agent.id), "description": t["description"]})
    assert resp.status == 200
    body = await resp.json()
    assert resp.headers["ETag"] == '"2"' and body["version"] == 2
    assert (body["title"], body["priority"], body["tags"], body["assignee_id"]) == (
        "new", "urgent", ["b", "c"], str(agent.id))
    assert body["updated_at"] > t["updated_at"] and body["created_at"] == t["created_at"]
    [event] = await api.events_of(t["id"], "ticket.updated")
    # Only what changed; description was sent with its current value.
    assert event["data"] == {"version": 2, "changes": {
        "title": ["old", "new"], "priority": ["normal", "urgent"], "tags": [["a"], ["b", "c"]],
        "assignee_id": [None, str(agent.id)]}}
    assert event["actor"]["user_id"] == str(agent.id) and event["tenant_id"] == str(org.id)
    # Unassign with null.
    resp = await api.patch(agent, body, {"assignee_id": None})
    assert (await resp.json())["assignee_id"] is None


async def test_no_op_patch_keeps_version_and_emits_nothing(api, org):
    agent = await org.user("agent")
    t = await api.create_ticket(agent, title="same")
    for body in ({}, {"title": "same"}):
        resp = await api.patch(agent, t, body)
        assert resp.status == 200 and (await resp.json())["version"] == 1
    assert await api.events_of(t["id"], "ticket.updated") == []


async def test_if_match_required_and_checked(api, org):
    agent = await org.user("agent")
    t = await api.create_ticket(agent)
    url = f"/v1/tickets/{t['id']}"
    await api.problem(await api.client.patch(url, json={"title": "x"}, headers=agent.auth), 428)
    stale = await api.client.patch(url, json={"title": "x"}, headers={**agent.auth, "If-Match": '"7"'})
    await api.problem(stale, 412)
    assert stale.headers["ETag"] == '"1"'
    for form in ('W/{etag}', '"9", {etag}', "*"):
        etag = (await api.get(agent, t["id"])).headers["ETag"]
        resp = await api.client.patch(url, json={"title": f"after {etag}"},
                                      headers={**agent.auth, "If-Match": form.format(etag=etag)})
        assert resp.status == 200, (form, await resp.text())
        assert resp.headers["ETag"] != etag


async def test_every_status_move_follows_the_table(api, org):
    agent = await org.user("agent")
    for src, dst in itertools.product(STATUSES, STATUSES):
        if src == dst:
            continue
        t = await api.create_ticket(agent)
        for step in PATH[src]:
            t = await (await api.patch(agent, t, {"status": step})).json()
        resp = await api.patch(agent, t, {"status": dst})
        if dst in ALLOWED[src]:
            assert resp.status == 200, (src, dst)
            assert (await resp.json())["status"] == dst
        else:
            await api.problem(resp, 409)
            assert (await (await api.get(agent, t["id"])).json())["status"] == src


async def test_member_may_edit_only_title_and_description_of_own_ticket(api, org):
    member, other, agent = await org.user("member"), await org.user("member"), await org.user("agent")
    mine = await api.create_ticket(member)
    resp = await api.patch(member, mine, {"title": "better", "description": "more"})
    assert resp.status == 200
    mine = await resp.json()
    for field, value in (("status", "closed"), ("priority", "urgent"), ("tags", ["x"]), ("assignee_id", str(agent.id))):
        await api.problem(await api.patch(member, mine, {field: value}), 403)
    await api.problem(await api.patch(member, mine, {"title": "ok", "status": "closed"}), 403)
    theirs = await api.create_ticket(other)
    await api.problem(await api.patch(member, theirs, {"title": "mine now"}), 404)
    # Agents may change anything of any ticket of the organization.
    assert (await api.patch(agent, theirs, {"status": "closed", "title": "agent"})).status == 200


async def test_assignee_must_be_an_active_agent_or_above(api, org, other_org, membership_consumer):
    agent, admin, owner, member = [await org.user(r) for r in ("agent", "admin", "owner", "member")]
    stranger = await other_org.user("agent")
    t = await api.create_ticket(agent)
    for who in (agent, admin, owner):
        resp = await api.patch(agent, t, {"assignee_id": str(who.id)})
        assert resp.status == 200
        t = await resp.json()
    for who in (member.id, stranger.id, uuid.uuid4()):
        body = await api.problem(await api.patch(agent, t, {"assignee_id": str(who)}), 422)
        assert body["errors"][0]["field"] == "assignee_id"
    # A removed agent, or one demoted to member, is no longer assignable.
    await membership_consumer.process(api.membership_event("membership.removed", org.id, admin.id, "admin"))
    await membership_consumer.process(api.membership_event("membership.role_changed", org.id, owner.id, "member"))
    t = await (await api.patch(agent, t, {"assignee_id": None})).json()
    for who in (admin, owner):
        await api.problem(await api.patch(agent, t, {"assignee_id": str(who.id)}), 422)


async def test_patch_validation(api, org):
    agent = await org.user("agent")
    t = await api.create_ticket(agent)
    for body in ({"title": None}, {"title": ""}, {"status": "done"}, {"tags": None}, {"priority": None},
                 {"description": None}, {"number": 5}, {"requester_id": str(agent.id)}, {"tags": ["a"] * 11}):
        await api.problem(await api.patch(agent, t, body), 422)
    await api.problem(await api.patch(agent, {"id": uuid.uuid4(), "version": 1}, {"title": "x"}), 404)


async def test_concurrent_patch_with_same_if_match_one_wins(api, org):
    agent = await org.user("agent")
    for _ in range(3):
        t = await api.create_ticket(agent)
        resps = await asyncio.gather(api.patch(agent, t, {"title": "A"}), api.patch(agent, t, {"title": "B"}))
        assert sorted(r.status for r in resps) == [200, 412]
        final = await (await api.get(agent, t["id"])).json()
        assert final["version"] == 2
        winner = next(r for r in resps if r.status == 200)
        assert (await winner.json())["title"] == final["title"]
