"""POST/GET /v1/tickets/{id}/comments: internal notes, member rules, pagination, events."""
import uuid


async def test_comment_roundtrip_and_event(api, org):
    member, agent = await org.user("member"), await org.user("agent")
    t = await api.create_ticket(member)
    url = f"/v1/tickets/{t['id']}/comments"
    resp = await api.client.post(url, json={"body": "It broke again"}, headers=member.auth)
    assert resp.status == 201
    c = await resp.json()
    assert (c["body"], c["internal"], c["author_id"], c["ticket_id"]) == (
        "It broke again", False, str(member.id), t["id"])
    [event] = await api.events_of(t["id"], "ticket.commented")
    assert event["data"] == {"comment_id": c["id"], "internal": False, "author_id": str(member.id)}
    assert event["subject"] == {"type": "ticket", "id": t["id"]} and event["tenant_id"] == str(org.id)
    listed = await (await api.client.get(url, headers=agent.auth)).json()
    assert listed == {"items": [c], "next_cursor": None}


async def test_internal_comments_agents_only_and_hidden_from_members(api, org):
    member, agent, admin = await org.user("member"), await org.user("agent"), await org.user("admin")
    t = await api.create_ticket(member)
    url = f"/v1/tickets/{t['id']}/comments"
    await api.problem(await api.client.post(url, json={"body": "psst", "internal": True}, headers=member.auth), 403)
    note = await (await api.client.post(url, json={"body": "customer is VIP", "internal": True},
                                        headers=agent.auth)).json()
    public = await (await api.client.post(url, json={"body": "on it"}, headers=admin.auth)).json()
    assert note["internal"] is True
    seen_by_member = await (await api.client.get(url, headers=member.auth)).json()
    assert [c["id"] for c in seen_by_member["items"]] == [public["id"]]
    seen_by_agent = await (await api.client.get(url, headers=agent.auth)).json()
    assert [c["id"] for c in seen_by_agent["items"]] == [note["id"], public["id"]]


async def test_members_comment_only_on_their_own_tickets(api, org, other_org):
    m1, m2 = await org.user("member"), await org.user("member")
    stranger = await other_org.user("owner")
    t = await api.create_ticket(m2)
    url = f"/v1/tickets/{t['id']}/comments"
    await api.problem(await api.client.post(url, json={"body": "hi"}, headers=m1.auth), 404)
    await api.problem(await api.client.get(url, headers=m1.auth), 404)
    await api.problem(await api.client.post(url, json={"body": "hi"}, headers=stranger.auth), 404)
    await api.problem(await api.client.get(url, headers=stranger.auth), 404)
    await api.problem(await api.client.post(f"/v1/tickets/{uuid.uuid4()}/comments", json={"body": "x"},
                                            headers=m2.auth), 404)


async def test_comment_validation(api, org):
    agent = await org.user("agent")
    t = await api.create_ticket(agent)
    url = f"/v1/tickets/{t['id']}/comments"
    for body in ({}, {"body": ""}, {"body": "   "}, {"body": "x" * 20001}, {"body": "x", "internal": "maybe"},
                 {"body": "x", "extra": 1}, {"body": "a\x00b"}):
        await api.problem(await api.client.post(url, json=body, headers=agent.auth), 422)


async def test_comments_paginate_with_cursor(api, org):
    agent = await org.user("agent")
    t = await api.create_ticket(agent)
    url = f"/v1/tickets/{t['id']}/comments"
    ids = [(await (await api.client.post(url, json={"body": f"c{i}"}, headers=agent.auth)).json())["id"]
           for i in range(7)]
    seen, cursor = [], None
    while True:
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        body = await (await api.client.get(url, params=params, headers=agent.auth)).json()
        seen += [c["id"] for c in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == ids
    # A cursor of one ticket is refused on another; a forged one is 422.
    other = await api.create_ticket(agent)
    first = await (await api.client.get(url, params={"limit": "1"}, headers=agent.auth)).json()
    resp = await api.client.get(f"/v1/tickets/{other['id']}/comments", params={"cursor": first["next_cursor"]},
                                headers=agent.auth)
    assert (await api.problem(resp, 422))["errors"][0]["field"] == "cursor"
    await api.problem(await api.client.get(url, params={"cursor": "forged"}, headers=agent.auth), 422)
    await api.problem(await api.client.get(url, params={"limit": "500"}, headers=agent.auth), 422)
