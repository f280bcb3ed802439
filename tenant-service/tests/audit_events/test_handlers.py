"""The audit log API. The rows are written by the audit consumer's own handler
(tenant_service.audit.service.record_event) as tenant_app, from the envelopes the service put
in its outbox; the read goes through row-level security."""
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared.db import tenant_transaction
from shared.messaging.envelope import Actor, Event, Subject
from shared.messaging.outbox import event_json
from tenant_service.audit.service import record_event


async def record(app_db, envelope: dict) -> None:
    """What the audit consumer does with one delivered envelope."""
    async with app_db.acquire() as conn, conn.transaction():
        await record_event(conn, Event.model_validate(envelope))


def envelope(tenant_id, type_="ticket.created", at=None, actor=None, subject_id=None) -> dict:
    e = Event(id=uuid.uuid4(), type=type_, occurred_at=at or datetime.now(UTC), source="test",
              tenant_id=tenant_id, actor=Actor(user_id=actor, ip="198.51.100.7"),
              subject=Subject(type="ticket", id=subject_id or str(uuid.uuid4())), request_id="rid-test", data={})
    return json.loads(event_json(e))


async def test_an_action_appears_in_the_audit_log(client, world, outbox, app_db):
    org = await world.org()
    rid = f"req-{uuid.uuid4().hex}"
    resp = await client.patch(f"/v1/organizations/{org.id}/members/{org['member'].user_id}", json={"role": "agent"},
                              headers={**org["admin"].auth, "X-Request-ID": rid})
    assert resp.status == 200
    for env in await outbox(org.id):
        await record(app_db, env)
    resp = await client.get(f"/v1/organizations/{org.id}/audit-events", headers=org["owner"].auth)
    assert resp.status == 200
    body = await resp.json()
    newest = body["items"][0]
    assert newest["type"] == "membership.role_changed" and newest["request_id"] == rid
    assert newest["actor"]["user_id"] == str(org["admin"].user_id)
    assert newest["data"]["role"] == "agent"
    assert [i["type"] for i in body["items"]][-2:] == ["membership.created", "organization.created"]
    assert newest == (await outbox(org.id, "membership.role_changed"))[0]


@pytest.fixture(scope="module")
async def log(world, app_db):
    """An organization with 7 events an hour apart (3 by one actor on one subject) and a
    neighbour organization with events of its own."""
    org, other = await world.org(roles=("owner", "admin")), await world.org(roles=("owner",))
    base = datetime(2026, 1, 1, tzinfo=UTC)
    actor, subject = uuid.uuid4(), str(uuid.uuid4())
    envs = []
    for i in range(7):
        mine = i % 2 == 0
        env = envelope(org.id, "ticket.updated" if mine else "ticket.created", base + timedelta(hours=i),
                       actor if mine else uuid.uuid4(), subject if mine else None)
        envs.append(env)
        await record(app_db, env)
    for i in range(3):
        await record(app_db, envelope(other.id, "ticket.updated", base + timedelta(hours=i), actor, subject))
    return org, other, envs, actor, subject, base


async def fetch(client, org, query=""):
    resp = await client.get(f"/v1/organizations/{org.id}/audit-events{query}", headers=org["owner"].auth)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_newest_first_and_pagination(client, log):
    org, _, envs, *_ = log
    seen, cursor, pages = [], None, 0
    while True:
        body = await fetch(client, org, "?limit=3" + (f"&cursor={cursor}" if cursor else ""))
        seen += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert pages == 3 and seen == envs[::-1]


async def test_filters(client, log):
    org, _, envs, actor, subject, base = log
    ids = lambda body: [i["id"] for i in body["items"]]  # noqa: E731
    mine = [e["id"] for e in envs[::-1] if e["type"] == "ticket.updated"]
    assert ids(await fetch(client, org, "?type=ticket.updated")) == mine
    assert ids(await fetch(client, org, f"?actor_id={actor}")) == mine
    assert ids(await fetch(client, org, f"?subject_id={subject}&type=ticket.updated")) == mine
    since, until = (base + timedelta(hours=2)).isoformat(), (base + timedelta(hours=5)).isoformat()
    window = await fetch(client, org, f"?since={since.replace('+00:00', 'Z')}&until={until.replace('+', '%2B')}")
    assert ids(window) == [envs[4]["id"], envs[3]["id"], envs[2]["id"]]  # since inclusive, until exclusive
    assert ids(await fetch(client, org, "?type=nothing.here")) == []
    paged = await fetch(client, org, "?type=ticket.updated&limit=2")
    rest = await fetch(client, org, f"?type=ticket.updated&limit=2&cursor={paged['next_cursor']}")
    assert ids(paged) + ids(rest) == mine


async def test_a_cursor_pages_only_the_selection_and_the_list_it_was_issued_for(client, log, problem):
    org = log[0]
    paged = await fetch(client, org, "?type=ticket.updated&limit=1")
    url = f"/v1/organizations/{org.id}/audit-events"
    for query in ("", "?type=ticket.created", "?type=ticket.updated&since=2026-01-01T00:00:00Z"):
        sep = "&" if query else "?"
        resp = await client.get(f"{url}{query}{sep}cursor={paged['next_cursor']}", headers=org["owner"].auth)
        err = await problem(resp, 422)
        assert err["code"] == "invalid_cursor" and err["errors"][0]["field"] == "cursor", query
    # the members list of the same organization does not take the audit log's cursor
    resp = await client.get(f"/v1/organizations/{org.id}/members?cursor={paged['next_cursor']}",
                            headers=org["owner"].auth)
    assert (await problem(resp, 422))["code"] == "invalid_cursor"


async def test_another_organizations_events_never_show(client, log, app_db):
    org, other, envs, actor, *_ = log
    assert {i["tenant_id"] for i in (await fetch(client, org, f"?actor_id={actor}"))["items"]} == {str(org.id)}
    assert len((await fetch(client, other))["items"]) == 3
    # row-level security itself, under the service's role: the policy scopes by app.tenant_id
    async with tenant_transaction(app_db, org.id) as conn:
        assert await conn.fetchval("SELECT count(*) FROM audit_event WHERE tenant_id = $1", other.id) == 0
        assert await conn.fetchval("SELECT count(*) FROM audit_event WHERE tenant_id = $1", org.id) == len(envs)
    async with app_db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM audit_event") == 0  # no scope set: nothing visible


@pytest.mark.parametrize("query,field", [
    ("?actor_id=not-a-uuid", "actor_id"), ("?since=yesterday", "since"), ("?since=2026-01-01T00:00:00", "since"),
    ("?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "body"), ("?limit=0", "limit"),
    ("?limit=101", "limit"), ("?cursor=bogus", "cursor"), ("?type=", "type"),
])
async def test_query_validation(client, log, problem, query, field):
    org = log[0]
    resp = await client.get(f"/v1/organizations/{org.id}/audit-events{query}", headers=org["admin"].auth)
    err = await problem(resp, 422)
    assert field in [e["field"] for e in err["errors"]], err
