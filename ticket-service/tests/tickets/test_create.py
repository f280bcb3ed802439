"""POST /v1/tickets: validation, roles, numbering, events, Idempotency-Key."""
import asyncio
import uuid


async def test_create_returns_ticket_with_etag_and_event(api, org):
    owner = await org.user("owner")
    resp = await api.client.post("/v1/tickets", json={"title": "  Printer on fire ", "description": "smoke",
                                                       "priority": "urgent", "tags": ["hw", "hw", "fire"]},
                                 headers={**owner.auth, "X-Request-ID": "req-create-0001"})
    assert resp.status == 201
    t = await resp.json()
    assert resp.headers["ETag"] == f'"{t["version"]}"'
    assert t["title"] == "Printer on fire" and t["description"] == "smoke"
    assert (t["status"], t["priority"], t["tags"], t["version"], t["number"]) == (
        "open", "urgent", ["hw", "fire"], 1, 1)
    assert t["requester_id"] == str(owner.id) and t["assignee_id"] is None
    assert t["created_at"].endswith("Z")
    [event] = await api.events_of(t["id"], "ticket.created")
    assert event["tenant_id"] == str(org.id) and event["source"] == "ticket-service"
    assert event["actor"]["user_id"] == str(owner.id) and event["actor"]["ip"]
    assert event["request_id"] == "req-create-0001"
    assert event["subject"] == {"type": "ticket", "id": t["id"]}
    assert event["data"] == t


async def test_defaults_and_numbers_count_per_organization(api, org, other_org):
    a, b = await org.user("member"), await other_org.user("member")
    t1 = await api.create_ticket(a)
    t2 = await api.create_ticket(a)
    u1 = await api.create_ticket(b)
    assert (t1["number"], t2["number"], u1["number"]) == (1, 2, 1)
    assert (t1["priority"], t1["description"], t1["tags"], t1["status"]) == ("normal", "", [], "open")


async def test_validation_errors(api, org):
    user = await org.user("agent")
    cases = [
        ({}, "title"), ({"title": ""}, "title"), ({"title": "   "}, "title"), ({"title": "x" * 201}, "title"),
        ({"title": "t", "description": "d" * 20001}, "description"), ({"title": "t", "priority": "asap"}, "priority"),
        ({"title": "t", "tags": [f"t{i}" for i in range(11)]}, "tags"), ({"title": "t", "tags": ["x" * 33]}, "tags.0"),
        ({"title": "t", "assignee_id": "nope"}, "assignee_id"), ({"title": "t", "status": "open"}, "status"),
        ({"title": "nul \x00 byte"}, "title"),
    ]
    for body, field in cases:
        problem = await api.problem(await api.client.post("/v1/tickets", json=body, headers=user.auth), 422)
        assert field in [e["field"] for e in problem["errors"]], (body, problem)
    # Limits are inclusive.
    t = await api.create_ticket(user, title="x" * 200, description="d" * 20000, tags=[f"t{i}" for i in range(10)])
    assert len(t["title"]) == 200 and len(t["tags"]) == 10


async def test_malformed_and_non_json_bodies(api, org):
    user = await org.user()
    await api.problem(await api.client.post("/v1/tickets", data=b"{oops",
                                            headers={**user.auth, "Content-Type": "application/json"}), 400)
    await api.problem(await api.client.post("/v1/tickets", data=b"title=x",
                                            headers={**user.auth, "Content-Type": "text/plain"}), 415)


async def test_auth_is_required_and_scoped(api, org, tokens):
    await api.problem(await api.client.post("/v1/tickets", json={"title": "x"}), 401)
    no_tid = tokens.mint(user_id=uuid.uuid4())
    for method, path in [("POST", "/v1/tickets"), ("GET", "/v1/tickets"), ("GET", f"/v1/tickets/{uuid.uuid4()}"),
                         ("PATCH", f"/v1/tickets/{uuid.uuid4()}"), ("DELETE", f"/v1/tickets/{uuid.uuid4()}"),
                         ("POST", f"/v1/tickets/{uuid.uuid4()}/restore"),
                         ("POST", f"/v1/tickets/{uuid.uuid4()}/comments"),
                         ("GET", f"/v1/tickets/{uuid.uuid4()}/comments")]:
        resp = await api.client.request(method, path, json={"title": "x"},
                                        headers={"Authorization": f"Bearer {no_tid}"})
        await api.problem(resp, 403)


async def test_assignee_rules_on_create(api, org, other_org):
    agent, member = await org.user("agent"), await org.user("member")
    other_agent = await other_org.user("agent")
    t = await api.create_ticket(agent, assignee_id=str(agent.id))
    assert t["assignee_id"] == str(agent.id)
    # A member is not assignable; nor is someone of another organization, or a stranger.
    for assignee in (member.id, other_agent.id, uuid.uuid4()):
        resp = await api.client.post("/v1/tickets", json={"title": "x", "assignee_id": str(assignee)},
                                     headers=agent.auth)
        assert (await api.problem(resp, 422))["errors"][0]["field"] == "assignee_id"
    # Members may not assign at all.
    resp = await api.client.post("/v1/tickets", json={"title": "x", "assignee_id": str(agent.id)}, headers=member.auth)
    await api.problem(resp, 403)


async def test_concurrent_creation_numbers_without_duplicates(api, org):
    users = [await org.user("member") for _ in range(4)]
    results = await asyncio.gather(*(api.create_ticket(users[i % 4]) for i in range(40)))
    assert sorted(t["number"] for t in results) == list(range(1, 41))


async def test_idempotency_key_replays_first_result(api, org):
    user = await org.user("member")
    headers = {**user.auth, "Idempotency-Key": f"k-{uuid.uuid4()}"}
    first = await api.client.post("/v1/tickets", json={"title": "once", "tags": ["a"]}, headers=headers)
    again = await api.client.post("/v1/tickets", data=b'{"tags": ["a"],  "title": "once"}',
                                  headers={**headers, "Content-Type": "application/json"})
    assert (first.status, again.status) == (201, 201)
    assert first.headers["ETag"] == again.headers["ETag"]
    assert await first.text() == await again.text()
    assert again.headers.get("Idempotent-Replayed") == "true" and "Idempotent-Replayed" not in first.headers
    listed = await api.list(user)
    assert [t["title"] for t in listed["items"]] == ["once"]
    assert len(await api.events_of((await first.json())["id"], "ticket.created")) == 1
    # Same key, other body: 422 and nothing created.
    other = await api.client.post("/v1/tickets", json={"title": "twice"}, headers=headers)
    assert (await api.problem(other, 422))["errors"][0]["field"] == "Idempotency-Key"
    assert len((await api.list(user))["items"]) == 1


async def test_idempotency_key_is_scoped_per_user(api, org):
    a, b = await org.user("member"), await org.user("member")
    key = {"Idempotency-Key": "shared-key-1"}
    ra = await api.client.post("/v1/tickets", json={"title": "x"}, headers={**a.auth, **key})
    rb = await api.client.post("/v1/tickets", json={"title": "x"}, headers={**b.auth, **key})
    assert (await ra.json())["id"] != (await rb.json())["id"]


async def test_concurrent_requests_with_one_key_create_one_ticket(api, org):
    user = await org.user("member")
    headers = {**user.auth, "Idempotency-Key": uuid.uuid4().hex}
    resps = await asyncio.gather(*(api.client.post("/v1/tickets", json={"title": "race"}, headers=headers)
                                   for _ in range(8)))
    bodies = [await r.json() for r in resps]
    assert {r.status for r in resps} == {201}
    assert len({b["id"] for b in bodies}) == 1
    assert len((await api.list(user))["items"]) == 1


async def test_expired_idempotency_key_counts_as_new(api, org, pool):
    user = await org.user("member")
    headers = {**user.auth, "Idempotency-Key": "expiring"}
    first = await (await api.client.post("/v1/tickets", json={"title": "x"}, headers=headers)).json()
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(org.id))
        await conn.execute(
            "UPDATE idempotency_key SET expires_at = now() - interval '1 second' WHERE user_id = $1", user.id)
    second = await (await api.client.post("/v1/tickets", json={"title": "x"}, headers=headers)).json()
    assert second["id"] != first["id"] and second["number"] == first["number"] + 1


async def test_invalid_idempotency_key_is_422(api, org):
    user = await org.user("member")
    for key in ("", "x" * 256, "has space"):
        resp = await api.client.post("/v1/tickets", json={"title": "x"}, headers={**user.auth, "Idempotency-Key": key})
        await api.problem(resp, 422)
