"""GET /v1/tickets/{id} and GET /v1/tickets: visibility, filters, search, sorts, cursors."""
import asyncio
import base64
import json
import uuid


async def test_get_returns_ticket_and_etag(api, org):
    agent = await org.user("agent")
    t = await api.create_ticket(agent, title="hello")
    resp = await api.get(agent, t["id"])
    assert resp.status == 200 and resp.headers["ETag"] == '"1"'
    assert await resp.json() == t


async def test_unknown_malformed_and_foreign_ids_are_404(api, org, other_org):
    a, b = await org.user("owner"), await other_org.user("owner")
    t = await api.create_ticket(a)
    await api.problem(await api.get(a, uuid.uuid4()), 404)
    await api.problem(await api.get(a, "not-a-uuid"), 404)
    await api.problem(await api.get(b, t["id"]), 404)


async def test_members_see_only_their_own_tickets(api, org):
    m1, m2, agent = await org.user("member"), await org.user("member"), await org.user("agent")
    mine = await api.create_ticket(m1)
    theirs = await api.create_ticket(m2)
    by_agent = await api.create_ticket(agent)
    assert (await api.get(m1, mine["id"])).status == 200
    await api.problem(await api.get(m1, theirs["id"]), 404)
    assert [t["id"] for t in (await api.list(m1))["items"]] == [mine["id"]]
    # Asking for another requester's tickets yields nothing rather than them.
    assert (await api.list(m1, requester_id=str(m2.id)))["items"] == []
    ids = {t["id"] for t in (await api.list(agent))["items"]}
    assert ids == {mine["id"], theirs["id"], by_agent["id"]}


async def test_filters(api, org):
    agent, member = await org.user("agent"), await org.user("member")
    a = await api.create_ticket(agent, priority="high", tags=["billing", "vip"], assignee_id=str(agent.id))
    b = await api.create_ticket(member, priority="low", tags=["billing"])
    c = await api.create_ticket(member, priority="high")
    resp = await api.patch(agent, c, {"status": "pending"})
    assert resp.status == 200

    def ids(body):
        return {t["id"] for t in body["items"]}
    assert ids(await api.list(agent, priority="high")) == {a["id"], c["id"]}
    assert ids(await api.list(agent, status="pending")) == {c["id"]}
    assert ids(await api.list(agent, status="open")) == {a["id"], b["id"]}
    assert ids(await api.list(agent, tag="billing")) == {a["id"], b["id"]}
    assert ids(await api.list(agent, tag="vip", priority="high")) == {a["id"]}
    assert ids(await api.list(agent, assignee_id=str(agent.id))) == {a["id"]}
    assert ids(await api.list(agent, requester_id=str(member.id))) == {b["id"], c["id"]}
    for bad in ({"status": "nope"}, {"priority": ""}, {"assignee_id": "x"}, {"sort": "title"}, {"limit": "0"},
                {"limit": "101"}, {"unknown": "1"}, {"tag": "x" * 33}):
        await api.problem(await api.client.get("/v1/tickets", params=bad, headers=agent.auth), 422)


async def test_full_text_search_over_title_and_description(api, org):
    agent = await org.user("agent")
    a = await api.create_ticket(agent, title="Printer jams constantly", description="third floor")
    b = await api.create_ticket(agent, title="VPN down", description="cannot reach the printers from home")
    await api.create_ticket(agent, title="Coffee machine", description="empty")
    assert {t["id"] for t in (await api.list(agent, q="printer"))["items"]} == {a["id"], b["id"]}  # stemmed
    assert {t["id"] for t in (await api.list(agent, q="printer -vpn"))["items"]} == {a["id"]}
    assert {t["id"] for t in (await api.list(agent, q='"third floor"'))["items"]} == {a["id"]}
    assert (await api.list(agent, q="nothing-like-this"))["items"] == []
    # Search syntax errors are not errors: websearch_to_tsquery accepts any text.
    assert (await api.list(agent, q='"(&|!'))["items"] == []


async def _walk(api, user, **params):
    seen, pages, cursor = [], 0, None
    while True:
        q = dict(params, **({"cursor": cursor} if cursor else {}))
        body = await api.list(user, **q)
        seen += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return seen, pages


async def test_every_sort_pages_through_all_tickets_once_in_order(api, org):
    agent = await org.user("agent")
    prios = ["low", "normal", "high", "urgent"]
    created = []
    for i in range(13):
        created.append(await api.create_ticket(agent, title=f"t{i}", priority=prios[i % 4]))
    # Touch some so that updated_at order differs from created_at order.
    for t in created[::3]:
        assert (await api.patch(agent, t, {"title": t["title"] + "!"})).status == 200
    rank = {p: i for i, p in enumerate(prios)}
    by_id = {t["id"]: t for t in created}
    for sort in ("created_at", "-created_at", "updated_at", "-updated_at", "priority", "-priority"):
        items, pages = await _walk(api, agent, sort=sort, limit=4)
        assert pages == 4
        assert len(items) == 13 and {t["id"] for t in items} == set(by_id)
        field = sort.lstrip("-")
        if field == "priority":
            keys = [(rank[t["priority"]], t["created_at"]) for t in items]
        else:
            keys = [t[field] for t in items]
        assert keys == sorted(keys, reverse=sort.startswith("-")), sort
    # Default is newest first.
    default = (await api.list(agent))["items"]
    assert [t["number"] for t in default] == list(range(13, 0, -1))


async def test_cursor_is_tamper_checked_and_bound_to_its_query(api, org):
    agent = await org.user("agent")
    for _ in range(3):
        await api.create_ticket(agent, priority="high")
    cursor = (await api.list(agent, limit=1))["next_cursor"]
    assert cursor
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    payload, sig = json.loads(raw[:-16]), raw[-16:]
    payload["k"][0] = "2000-01-01T00:00:00+00:00"
    forged = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode() + sig).decode().rstrip("=")
    for bad in (forged, "garbage", "", cursor[:-2], "A" * 500):
        body = await api.problem(await api.client.get("/v1/tickets", params={"cursor": bad}, headers=agent.auth), 422)
        assert body["errors"][0]["field"] == "cursor"
    # A cursor of one sort or filter set is refused with another.
    for params in ({"sort": "created_at"}, {"sort": "-priority"}, {"priority": "high"}):
        resp = await api.client.get("/v1/tickets", params={"cursor": cursor, **params}, headers=agent.auth)
        assert (await api.problem(resp, 422))["errors"][0]["field"] == "cursor"
    resp = await api.client.get("/v1/tickets", params={"cursor": cursor, "limit": 1}, headers=agent.auth)
    assert resp.status == 200


async def test_soft_deleted_tickets_are_not_listed(api, org):
    admin = await org.user("admin")
    keep, gone = await api.create_ticket(admin), await api.create_ticket(admin)
    assert (await api.client.delete(f"/v1/tickets/{gone['id']}", headers=admin.auth)).status == 204
    assert [t["id"] for t in (await api.list(admin))["items"]] == [keep["id"]]


async def test_list_under_concurrent_reads(api, org):
    agent = await org.user("agent")
    await asyncio.gather(*(api.create_ticket(agent) for _ in range(5)))
    bodies = await asyncio.gather(*(api.list(agent) for _ in range(10)))
    assert all(len(b["items"]) == 5 for b in bodies)


async def test_search_answers_the_same_through_the_index_and_the_scan(api, org, monkeypatch):
    """ticket_search_page finds a page by walking the sort order (a common term) or through the
    full-text index (a rare one, or with no walk at all); the two paths give the same pages."""
    from ticket_service.tickets import repository
    agent = await org.user("agent")
    made = [await api.create_ticket(agent, title=f"quokka report {i}", priority=p)
            for i, p in enumerate(["low", "high", "urgent", "normal", "high"])]
    await api.create_ticket(agent, title="unrelated words")

    async def walk(**query):
        seen, cursor = [], None
        while True:
            body = await api.list(agent, limit=2, **query, **({"cursor": cursor} if cursor else {}))
            seen += [t["id"] for t in body["items"]]
            cursor = body["next_cursor"]
            if not cursor:
                return seen

    for sort in ("-created_at", "priority", "-updated_at"):
        scanned = await walk(q="quokka", sort=sort)   # 6 tickets: the walk reads them all
        monkeypatch.setattr(repository, "SEARCH_WALK_ROWS", 0)   # no walk: the index only
        indexed = await walk(q="quokka", sort=sort)
        monkeypatch.undo()
        assert indexed == scanned and sorted(indexed) == sorted(t["id"] for t in made)
    high = {t["id"] for t in made if t["priority"] == "high"}
    assert set(await walk(q="quokka", priority="high")) == high
