"""The journeys of the public contract, through the gateway of a stack started like `make run`:
two organizations, all four roles, from signup to an audited, searched, paginated,
concurrently edited ticket; and what reaches the event bus."""
import asyncio
import json
import time
import uuid

from shared.messaging.asyncapi import EventValidator
from tests.e2e.api import PASSWORD, expect, join, scope, signup

ENVELOPE_KEYS = {"id", "type", "version", "occurred_at", "source", "tenant_id", "actor", "subject",
                 "request_id", "data"}


async def test_full_support_journey_across_two_organizations(http, tap):
    # Two organizations, each created at signup.
    owner_a = await signup(http, "owner-a", org_name=f"Acme {uuid.uuid4().hex[:6]}")
    owner_b = await signup(http, "owner-b", org_name=f"Globex {uuid.uuid4().hex[:6]}")
    owner_a = await scope(http, owner_a, owner_a.org_id)
    owner_b = await scope(http, owner_b, owner_b.org_id)
    assert owner_a.role == "owner"

    admin = await join(http, owner_a, "admin")
    agent = await join(http, owner_a, "agent")
    member = await join(http, owner_a, "member")
    assert (admin.role, agent.role, member.role) == ("admin", "agent", "member")

    members = await expect(await http.get(f"/v1/organizations/{owner_a.org_id}/members", headers=admin.auth), 200)
    assert {m["role"] for m in members["items"]} == {"owner", "admin", "agent", "member"}
    org = await expect(await http.get(f"/v1/organizations/{owner_a.org_id}", headers=member.auth), 200)
    assert org["member_count"] == 4

    # A member files tickets; the request id follows the creation into the event.
    rid = f"e2e-create-{uuid.uuid4().hex[:12]}"
    resp = await http.post("/v1/tickets", headers={**member.auth, "X-Request-ID": rid},
                           json={"title": "Printer on fire", "description": "Flames from tray 2", "tags": ["hardware"]})
    ticket = await expect(resp, 201)
    assert resp.headers["X-Request-ID"] == rid and resp.headers.get("ETag")
    assert ticket["number"] >= 1 and ticket["status"] == "open" and ticket["requester_id"] == member.id
    for i in range(4):
        await expect(await http.post("/v1/tickets", headers=member.auth,
                                     json={"title": f"Routine request {i}", "description": "paper refill"}), 201)

    # Organization B sees none of it, and A's ticket id is a 404 there.
    assert (await expect(await http.get("/v1/tickets", headers=owner_b.auth), 200))["items"] == []
    await expect(await http.get(f"/v1/tickets/{ticket['id']}", headers=owner_b.auth), 404)
    await expect(await http.get(f"/v1/organizations/{owner_a.org_id}/members", headers=owner_b.auth), 404)

    # Search and pagination.
    found = await expect(await http.get("/v1/tickets?q=fire", headers=agent.auth), 200)
    assert [t["id"] for t in found["items"]] == [ticket["id"]]
    seen, cursor = [], None
    while True:
        url = "/v1/tickets?limit=2&sort=created_at" + (f"&cursor={cursor}" if cursor else "")
        page = await expect(await http.get(url, headers=agent.auth), 200)
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 5 and len(set(seen)) == 5

    # Concurrent edits with the same ETag: exactly one wins, the other gets 412.
    etag = (await http.get(f"/v1/tickets/{ticket['id']}", headers=agent.auth)).headers["ETag"]
    r1, r2 = await asyncio.gather(
        http.patch(f"/v1/tickets/{ticket['id']}", headers={**agent.auth, "If-Match": etag},
                   json={"status": "in_progress", "assignee_id": agent.id}),
        http.patch(f"/v1/tickets/{ticket['id']}", headers={**admin.auth, "If-Match": etag},
                   json={"priority": "urgent"}))
    assert sorted([r1.status, r2.status]) == [200, 412]

    # Internal notes stay hidden from the member.
    await expect(await http.post(f"/v1/tickets/{ticket['id']}/comments", headers=agent.auth,
                                 json={"body": "Call facilities", "internal": True}), 201)
    await expect(await http.post(f"/v1/tickets/{ticket['id']}/comments", headers=member.auth,
                                 json={"body": "Still burning"}), 201)
    as_member = await expect(await http.get(f"/v1/tickets/{ticket['id']}/comments", headers=member.auth), 200)
    as_agent = await expect(await http.get(f"/v1/tickets/{ticket['id']}/comments", headers=agent.auth), 200)
    assert len(as_member["items"]) == 1 and len(as_agent["items"]) == 2

    # Role rules: a member cannot delete, an admin can; the audit log is admin+.
    await expect(await http.delete(f"/v1/tickets/{ticket['id']}", headers=member.auth), 403)
    await expect(await http.get(f"/v1/organizations/{owner_a.org_id}/audit-events", headers=agent.auth), 403)

    # The creation reaches the audit log within 5 s, carrying the request id.
    deadline = time.monotonic() + 5
    while True:
        log = await expect(await http.get(
            f"/v1/organizations/{owner_a.org_id}/audit-events?type=ticket.created&subject_id={ticket['id']}",
            headers=admin.auth), 200)
        if log["items"]:
            break
        assert time.monotonic() < deadline, "ticket.created not in the audit log within 5 s"
        await asyncio.sleep(0.2)
    entry = log["items"][0]
    assert ENVELOPE_KEYS <= entry.keys() and entry["request_id"] == rid and entry["tenant_id"] == owner_a.org_id

    # And on the bus, with the contract's envelope and message properties.
    event = await tap.wait_for(lambda e: e["type"] == "ticket.created" and e["subject"]["id"] == ticket["id"])
    assert ENVELOPE_KEYS <= event.keys() and event["version"] == 1 and event["source"] == "ticket-service"
    assert event["actor"]["user_id"] == member.id and event["request_id"] == rid
    message = tap.message_of(event["id"])
    assert message.message_id == event["id"] and message.content_type == "application/json"
    assert message.delivery_mode == 2 and message.routing_key == "ticket.created"
    updated = await tap.wait_for(lambda e: e["type"] == "ticket.updated" and e["subject"]["id"] == ticket["id"])
    assert all(isinstance(v, list) and len(v) == 2 for v in updated["data"]["changes"].values())


async def test_every_event_on_the_bus_has_the_contract_envelope(http, tap):
    owner = await signup(http, "envelope", org_name=f"Envelope {uuid.uuid4().hex[:6]}")
    await tap.wait_for(lambda e: e["type"] == "organization.created" and e["tenant_id"] == owner.org_id)
    await tap.wait_for(lambda e: e["type"] == "user.registered" and e["subject"]["id"] == owner.id)
    for _, event in tap.messages:
        assert ENVELOPE_KEYS <= event.keys(), event
        assert event["version"] == 1 and {"user_id", "ip"} <= event["actor"].keys()
        assert {"type", "id"} <= event["subject"].keys()
        text = str(event["data"]).lower()
        assert PASSWORD.lower() not in text and "password_hash" not in text and "refresh_token" not in text


async def test_role_change_and_removal_take_effect_within_five_seconds(http):
    owner = await signup(http, "rev-owner", org_name=f"Revoke {uuid.uuid4().hex[:6]}")
    owner = await scope(http, owner, owner.org_id)
    agent = await join(http, owner, "agent")
    await expect(await http.get("/v1/tickets", headers=agent.auth), 200)
    await expect(await http.patch(f"/v1/organizations/{owner.org_id}/members/{agent.id}", headers=owner.auth,
                                  json={"role": "member"}), 200)
    deadline = time.monotonic() + 5
    while (await http.get("/v1/tickets", headers=agent.auth)).status != 401:
        assert time.monotonic() < deadline, "old-role token still accepted after 5 s"
        await asyncio.sleep(0.2)
    # A fresh token carries the new role.
    agent = await scope(http, agent, owner.org_id)
    assert agent.role == "member"

    await expect(await http.delete(f"/v1/organizations/{owner.org_id}/members/{agent.id}", headers=owner.auth), 204)
    deadline = time.monotonic() + 5
    while (await http.get("/v1/tickets", headers=agent.auth)).status != 401:
        assert time.monotonic() < deadline, "removed member's token still accepted after 5 s"
        await asyncio.sleep(0.2)


async def test_logout_ends_the_session_at_once(http):
    user = await signup(http, "logout")
    await expect(await http.get("/v1/auth/me", headers=user.auth), 200)
    await expect(await http.post("/v1/auth/logout", headers=user.auth), 204)
    deadline = time.monotonic() + 5
    while (await http.get("/v1/auth/me", headers=user.auth)).status != 401:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    await expect(await http.post("/v1/auth/refresh", json={"refresh_token": user.refresh}), 401)
    await expect(await http.post("/v1/auth/login", json={"email": user.email, "password": PASSWORD}), 200)


async def test_refresh_reuse_revokes_the_session(http):
    user = await signup(http, "reuse")
    first = user.refresh
    body = await expect(await http.post("/v1/auth/refresh", json={"refresh_token": first}), 200)
    second = body["tokens"]["refresh_token"]
    await expect(await http.post("/v1/auth/refresh", json={"refresh_token": second}), 200)
    # `first` is now two generations old: presenting it again is reuse.
    await expect(await http.post("/v1/auth/refresh", json={"refresh_token": first}), 401)
    await expect(await http.post("/v1/auth/refresh", json={"refresh_token": second}), 401)


async def test_organization_deletion_hides_its_tickets(http):
    owner = await signup(http, "del-owner", org_name=f"Doomed {uuid.uuid4().hex[:6]}")
    owner = await scope(http, owner, owner.org_id)
    t = await expect(await http.post("/v1/tickets", headers=owner.auth, json={"title": "Last ticket"}), 201)
    await expect(await http.delete(f"/v1/organizations/{owner.org_id}", headers=owner.auth), 204)
    # Sessions scoped to it end; a token for it no longer works within 5 s.
    deadline = time.monotonic() + 5
    while (await http.get(f"/v1/tickets/{t['id']}", headers=owner.auth)).status not in (401, 404):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)
    login = await expect(await http.post("/v1/auth/login", json={"email": owner.email, "password": PASSWORD}), 200)
    me = await expect(await http.get("/v1/auth/me", headers={
        "Authorization": f"Bearer {login['tokens']['access_token']}"}), 200)
    assert me["organization_id"] is None


async def test_the_audit_log_exports_and_verifies_through_the_gateway(http):
    owner = await signup(http, "auditor", org_name=f"Audited {uuid.uuid4().hex[:6]}")
    owner = await scope(http, owner, owner.org_id)
    agent = await join(http, owner, "agent")
    await expect(await http.patch(f"/v1/organizations/{owner.org_id}/members/{agent.id}", headers=owner.auth,
                                  json={"role": "member"}), 200)
    base = f"/v1/organizations/{owner.org_id}/audit-events"
    deadline = time.monotonic() + 10
    while True:
        async with http.get(f"{base}/export", headers=owner.auth) as resp:
            assert resp.status == 200 and resp.headers["Content-Type"] == "application/x-ndjson"
            lines = [json.loads(line) for line in (await resp.text()).splitlines()]
        if any(e["type"] == "membership.role_changed" for e in lines):
            break
        assert time.monotonic() < deadline, f"role change not exported within 10 s: {[e['type'] for e in lines]}"
        await asyncio.sleep(0.2)
    times = [e["occurred_at"] for e in lines]
    assert times == sorted(times) and lines[0]["type"] in ("organization.created", "membership.created")
    verification = await expect(await http.get(f"{base}/verify", headers=owner.auth), 200)
    assert verification["first_broken_id"] is None and verification["checked"] >= len(lines)
    # The demoted agent: 401 once its token is stale, 403 (no audit:read) until then.
    async with http.get(f"{base}/export", headers=agent.auth) as resp:
        assert resp.status in (401, 403)


async def test_every_event_of_the_journeys_validates_against_asyncapi(http, tap):
    """Runs after the journeys above: everything they published (and anything else on the bus so
    far) matches the served AsyncAPI document; the session's teardown checks the rest."""
    async with http.get("/asyncapi.json") as resp:
        assert resp.status == 200
        validator = EventValidator(await resp.json())
    owner = await signup(http, "asyncapi", org_name=f"AsyncAPI {uuid.uuid4().hex[:6]}")
    await tap.wait_for(lambda e: e["type"] == "organization.created" and e["tenant_id"] == owner.org_id)
    seen = {event["type"] for _, event in tap.messages}
    # The journeys above cover at least these (an event type that stops being published shows here).
    assert {"user.registered", "organization.created", "membership.created", "ticket.created",
            "ticket.updated", "auth.login_succeeded"} <= seen, seen
    problems = tap.invalid_events(validator)
    assert not problems, "\n".join(problems[:50])
