"""The audit export: NDJSON, oldest first, the list's filters, streamed in constant memory."""
import asyncio
import gc
import json
import logging
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared.messaging.envelope import Actor, Event, Subject
from tenant_service.audit.service import record_event


async def record(app_db, event: Event) -> None:
    async with app_db.acquire() as conn, conn.transaction():
        await record_event(conn, event)


def make_event(org_id, type_: str, at: datetime) -> Event:
    return Event(id=uuid.uuid4(), type=type_, occurred_at=at, source="test", tenant_id=org_id,
                 actor=Actor(user_id=uuid.uuid4(), ip="198.51.100.7"),
                 subject=Subject(type="organization", id=str(org_id)), request_id="rid-export", data={})


async def export(client, org, query: str = "", member: str = "owner") -> list[dict]:
    resp = await client.get(f"/v1/organizations/{org.id}/audit-events/export{query}", headers=org[member].auth)
    text = await resp.text()
    assert resp.status == 200, text
    assert resp.headers["Content-Type"] == "application/x-ndjson"
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture(scope="module")
async def exported(world, app_db):
    """An organization with 9 events an hour apart, recorded out of order, and a neighbour."""
    org, other = await world.org(roles=("owner", "admin", "member")), await world.org(roles=("owner",))
    base = datetime(2026, 3, 1, tzinfo=UTC)
    events = [make_event(org.id, "organization.updated" if i % 3 else "organization.created", base + timedelta(hours=i))
              for i in range(9)]
    for event in reversed(events):  # delivery order is not occurrence order
        await record(app_db, event)
    await record(app_db, make_event(other.id, "organization.updated", base))
    return org, events


async def test_export_is_every_event_oldest_first_one_envelope_a_line(client, exported, admin_db):
    org, events = exported
    lines = await export(client, org)
    assert [line["id"] for line in lines] == [str(e.id) for e in events]
    stored = await admin_db.fetchval("SELECT envelope FROM tenant.audit_event WHERE id = $1", events[0].id)
    assert lines[0] == json.loads(stored)
    assert set(lines[0]) == {"id", "type", "version", "occurred_at", "source", "tenant_id", "actor", "subject",
                             "request_id", "data"}
    # The admin holds audit:read too.
    assert len(await export(client, org, member="admin")) == 9


async def test_export_filters_like_the_list(client, exported):
    org, events = exported
    assert [line["id"] for line in await export(client, org, "?type=organization.created")] == \
        [str(e.id) for e in events if e.type == "organization.created"]
    since, until = events[2].occurred_at.isoformat(), events[6].occurred_at.isoformat()
    window = await export(client, org, f"?since={since.replace('+', '%2B')}&until={until.replace('+', '%2B')}")
    assert [line["id"] for line in window] == [str(e.id) for e in events[2:6]]  # since inclusive, until exclusive
    both = await export(client, org, f"?type=organization.updated&since={since.replace('+', '%2B')}")
    assert [line["id"] for line in both] == [str(e.id) for e in events[2:] if e.type == "organization.updated"]
    assert await export(client, org, "?type=ticket.created") == []


@pytest.mark.parametrize("query", ["?since=yesterday", "?since=2026-03-01T00:00:00",
                                   "?since=2026-03-02T00:00:00Z&until=2026-03-01T00:00:00Z", "?type="])
async def test_bad_filters_are_422(client, exported, problem, query):
    org, _ = exported
    resp = await client.get(f"/v1/organizations/{org.id}/audit-events/export{query}", headers=org["owner"].auth)
    await problem(resp, 422)


async def test_export_needs_audit_read_and_the_organization(client, exported, world, problem):
    org, _ = exported
    path = f"/v1/organizations/{org.id}/audit-events/export"
    body = await problem(await client.get(path, headers=org["member"].auth), 403)
    assert "audit:read" in body["detail"]
    other = await world.org(roles=("owner",))
    await problem(await client.get(path, headers=other["owner"].auth), 404)
    await problem(await client.get("/v1/organizations/not-a-uuid/audit-events/export", headers=org["owner"].auth), 404)


async def test_export_of_a_deleted_organization_is_404(client, world, problem):
    org = await world.org(roles=("owner",))
    assert (await client.delete(f"/v1/organizations/{org.id}", headers=org["owner"].auth)).status == 204
    await problem(await client.get(f"/v1/organizations/{org.id}/audit-events/export", headers=org["owner"].auth), 404)


TOTAL = 100_000


@pytest.fixture(scope="module")
async def big_log(world, admin_db):
    """An organization with 100,000 stored events (about 60 MB of NDJSON), written with SQL."""
    org = await world.org(roles=("owner",))
    base = datetime(2025, 1, 1, tzinfo=UTC)
    await admin_db.execute(
        """
        INSERT INTO tenant.audit_event (id, tenant_id, type, occurred_at, actor_user_id, subject_type, subject_id,
                                        request_id, envelope)
        SELECT u, $1::uuid, 'organization.updated', t, NULL, 'organization', ($1::uuid)::text, 'rid-' || g,
               jsonb_build_object('id', u, 'type', 'organization.updated', 'version', 1,
                                  'occurred_at', to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                                  'source', 'tenant-service', 'tenant_id', ($1::uuid)::text,
                                  'actor', jsonb_build_object('user_id', NULL, 'ip', '198.51.100.7'),
                                  'subject', jsonb_build_object('type', 'organization', 'id', ($1::uuid)::text),
                                  'request_id', 'rid-' || g,
                                  'data', jsonb_build_object('changes', jsonb_build_object(
                                      'name', jsonb_build_array(repeat('o', 200) || g, repeat('n', 200) || g))))
          FROM (SELECT gen_random_uuid() AS u, g, $2::timestamptz + g * interval '1 second' AS t
                  FROM generate_series(1, $3::int) AS g) AS s
        """, org.id, base, TOTAL)
    yield org, base
    await admin_db.execute("DELETE FROM tenant.audit_event WHERE tenant_id = $1", org.id)


async def stream_export(client, org, query: str = "") -> tuple[int, int, str, str]:
    """Reads the export chunk by chunk, keeping only counts and the first and last line."""
    resp = await client.get(f"/v1/organizations/{org.id}/audit-events/export{query}", headers=org["owner"].auth)
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/x-ndjson"
    lines = size = 0
    first = last = ""
    tail = b""
    async for chunk in resp.content.iter_chunked(64 * 1024):
        size += len(chunk)
        lines += chunk.count(b"\n")
        parts = (tail + chunk).split(b"\n")
        if not first and len(parts) > 1:
            first = parts[0].decode()
        tail = parts[-1]
        if len(parts) > 1 and parts[-2]:
            last = parts[-2].decode()
    assert tail == b""
    return lines, size, first, last


async def test_export_of_100000_events_streams_in_flat_memory(client, big_log):
    org, base = big_log
    until = (base + timedelta(seconds=10_001)).isoformat().replace("+", "%2B")

    async def peak_of(query: str):
        gc.collect()
        tracemalloc.start()
        try:
            result = await stream_export(client, org, query)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        return result, peak

    (small_lines, small_size, _, _), small_peak = await peak_of(f"?until={until}")
    (lines, size, first, last), peak = await peak_of("")
    assert small_lines == 10_000 and lines == TOTAL
    assert json.loads(first)["request_id"] == "rid-1" and json.loads(last)["request_id"] == f"rid-{TOTAL}"
    # Ten times the events, the same memory (one batch at a time): well below the body itself.
    print(f"export: {lines} lines, {size / 1e6:.1f} MB; peak traced memory {peak / 1e6:.2f} MB "
          f"(10,000 lines: {small_peak / 1e6:.2f} MB)")
    assert size > 50_000_000
    assert peak < 12_000_000, peak
    assert peak < small_peak * 1.5 + 2_000_000, (peak, small_peak)


async def test_a_client_leaving_mid_export_costs_nothing(client, big_log, caplog):
    org, _ = big_log
    resp = await client.get(f"/v1/organizations/{org.id}/audit-events/export", headers=org["owner"].auth)
    assert resp.status == 200 and resp.headers["X-Request-ID"]
    assert await resp.content.read(100_000)
    resp.close()  # gone after the first 100 kB of ~80 MB
    await asyncio.sleep(0.5)
    # The service goes on answering (no connection left checked out by the abandoned stream).
    for _ in range(6):
        again = await client.get(f"/v1/organizations/{org.id}/audit-events/export?until=2025-01-01T00:01:00Z",
                                 headers=org["owner"].auth)
        assert again.status == 200 and len((await again.text()).splitlines()) == 59
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
