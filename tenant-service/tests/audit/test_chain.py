"""The audit log's hash chain: the audit consumer's handler appends each organization's events
in a chain; the verify route and the ``verify`` command name the first event that was altered,
removed or moved behind the service's back (superuser SQL); retention keeps the rest verifiable."""
import asyncio
import json
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from shared.messaging.envelope import Actor, Event, Subject
from shared.testing import app_dsn
from tenant_service.audit import service as audit
from tenant_service.audit.chain import chain_hash


def make_event(org_id, i: int, at: datetime) -> Event:
    return Event(id=uuid.uuid4(), type="organization.updated", occurred_at=at, source="test", tenant_id=org_id,
                 actor=Actor(user_id=uuid.uuid4(), ip="198.51.100.7"),
                 subject=Subject(type="organization", id=str(org_id)), request_id=f"rid-{i}",
                 data={"changes": {"name": [f"name {i}", f"name {i + 1}"]}})


async def record(app_db, event: Event) -> None:
    """What the audit consumer does with one delivered event."""
    async with app_db.acquire() as conn, conn.transaction():
        await audit.record_event(conn, event)


@pytest.fixture
async def chained(world, app_db):
    """An organization with 12 recorded events, a minute apart, in a fresh chain; returns
    (org, [event ids in chain order])."""
    org = await world.org(roles=("owner", "admin", "member"))
    base = datetime.now(UTC) - timedelta(hours=1)
    ids = []
    for i in range(12):
        event = make_event(org.id, i, base + timedelta(minutes=i))
        await record(app_db, event)
        ids.append(event.id)
    return org, ids


async def verify_route(client, org) -> dict:
    resp = await client.get(f"/v1/organizations/{org.id}/audit-events/verify", headers=org["owner"].auth)
    text = await resp.text()
    assert resp.status == 200, text
    return json.loads(text)


async def verify_command(org_id) -> tuple[int, dict]:
    """``python -m tenant_service.audit verify --organization ID --json`` as a real process."""
    env = {**os.environ, "AUDIT_DATABASE_URL": app_dsn("tenant"), "AUDIT_DB_CONNECT_ATTEMPTS": "2"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tenant_service.audit", "verify", "--organization", str(org_id), "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    lines = out.decode().strip().splitlines()
    assert len(lines) == 1, (out, err)
    result = json.loads(lines[0])
    assert result["organization_id"] == str(org_id)
    return proc.returncode, {k: result[k] for k in ("checked", "first_broken_id")}


async def assert_broken_at(client, org, event_id, checked: int) -> None:
    expected = {"checked": checked, "first_broken_id": str(event_id)}
    assert await verify_route(client, org) == expected
    assert await verify_command(org.id) == (1, expected)


async def test_an_intact_chain_verifies(client, chained, admin_db):
    org, ids = chained
    assert await verify_route(client, org) == {"checked": 12, "first_broken_id": None}
    assert await verify_command(org.id) == (0, {"checked": 12, "first_broken_id": None})
    # The chain as stored: positions 1..12 in recording order, each hash over the one before it,
    # reproducible from the exported line with the documented formula.
    rows = await admin_db.fetch(
        "SELECT id, chain_seq, prev_hash, hash, envelope::text AS line FROM tenant.audit_event "
        "WHERE tenant_id = $1 ORDER BY chain_seq", org.id)
    assert [r["id"] for r in rows] == ids and [r["chain_seq"] for r in rows] == list(range(1, 13))
    prev = ""
    for r in rows:
        assert r["prev_hash"] == prev and r["hash"] == chain_hash(prev, r["chain_seq"], r["line"])
        prev = r["hash"]


async def test_verify_needs_audit_read_and_the_organization(client, chained, world, problem):
    org, _ = chained
    path = f"/v1/organizations/{org.id}/audit-events/verify"
    body = await problem(await client.get(path, headers=org["member"].auth), 403)
    assert "audit:read" in body["detail"]
    assert (await client.get(path, headers=org["admin"].auth)).status == 200
    other = await world.org(roles=("owner",))
    await problem(await client.get(path, headers=other["owner"].auth), 404)
    await problem(await client.get(path), 401)


async def test_an_altered_event_is_named(client, chained, admin_db):
    org, ids = chained
    await admin_db.execute(
        "UPDATE tenant.audit_event SET envelope = jsonb_set(envelope, '{data,changes,name,1}', '\"Evil Corp\"') "
        "WHERE id = $1", ids[6])
    await assert_broken_at(client, org, ids[6], checked=7)


async def test_an_altered_indexed_column_is_named(client, chained, admin_db):
    """The columns the list and the export filter and order by must agree with the envelope."""
    org, ids = chained
    await admin_db.execute("UPDATE tenant.audit_event SET occurred_at = occurred_at - interval '1 day' "
                           "WHERE id = $1", ids[8])
    await assert_broken_at(client, org, ids[8], checked=9)


async def test_a_removed_event_is_found(client, chained, admin_db):
    org, ids = chained
    await admin_db.execute("DELETE FROM tenant.audit_event WHERE id = $1", ids[4])
    # The event after the gap no longer follows from the one before it.
    await assert_broken_at(client, org, ids[5], checked=5)


async def test_a_removed_newest_event_is_named_by_the_chain_head(client, chained, admin_db):
    org, ids = chained
    await admin_db.execute("DELETE FROM tenant.audit_event WHERE id = $1", ids[-1])
    await assert_broken_at(client, org, ids[-1], checked=11)


async def test_reordered_events_are_found(client, chained, admin_db):
    org, ids = chained
    # Swap the positions of the 4th and 5th events (through a free position: the index is unique).
    async with admin_db.acquire() as conn, conn.transaction():
        await conn.execute("UPDATE tenant.audit_event SET chain_seq = -1 WHERE id = $1", ids[3])
        await conn.execute("UPDATE tenant.audit_event SET chain_seq = 4 WHERE id = $1", ids[4])
        await conn.execute("UPDATE tenant.audit_event SET chain_seq = 5 WHERE id = $1", ids[3])
    # Position 4 now holds the 5th event, whose predecessor hash is not the 3rd event's hash.
    await assert_broken_at(client, org, ids[4], checked=4)


async def test_reordered_events_with_their_hashes_moved_too_are_found(client, chained, admin_db):
    """Moving whole rows (hashes included) still breaks the chain: a position is in the hash."""
    org, ids = chained
    rows = {r["id"]: r for r in await admin_db.fetch(
        "SELECT id, envelope::text AS env FROM tenant.audit_event WHERE id = ANY($1::uuid[])", [ids[1], ids[2]])}
    async with admin_db.acquire() as conn, conn.transaction():
        # Exchange the contents of positions 2 and 3 (envelopes, ids and hashes), keeping positions.
        await conn.execute(
            "UPDATE tenant.audit_event a SET envelope = b.envelope, prev_hash = b.prev_hash, hash = b.hash, "
            "type = b.type, occurred_at = b.occurred_at FROM tenant.audit_event b "
            "WHERE (a.id, b.id) IN (($1::uuid, $2::uuid), ($2::uuid, $1::uuid))", ids[1], ids[2])
    assert rows  # both existed
    result = await verify_route(client, org)
    assert result["first_broken_id"] == str(ids[1]) and result["checked"] == 2


async def test_duplicates_do_not_extend_the_chain(client, chained, app_db, admin_db):
    org, ids = chained
    event = make_event(org.id, 99, datetime.now(UTC))
    await record(app_db, event)
    await record(app_db, event)  # a redelivery the inbox did not stop (another consumer group)
    assert await verify_route(client, org) == {"checked": 13, "first_broken_id": None}
    assert await admin_db.fetchval("SELECT last_seq FROM tenant.audit_chain WHERE tenant_id = $1", org.id) == 13


async def test_concurrent_appends_to_one_organization_form_one_chain(client, world, app_db, admin_db):
    """Many transactions appending to the same organization at once (as consumer replicas do)
    take turns on the chain head: one position each, no fork, repeated."""
    org = await world.org(roles=("owner",))
    pool = await asyncpg.create_pool(app_dsn("tenant"), min_size=8, max_size=8,
                                     server_settings={"search_path": "tenant"})
    try:
        total = 0
        for round_ in range(5):
            now = datetime.now(UTC)
            events = [make_event(org.id, i, now + timedelta(microseconds=i)) for i in range(16)]
            await asyncio.gather(*(record(pool, e) for e in events))
            total += len(events)
            assert await verify_route(client, org) == {"checked": total, "first_broken_id": None}, round_
    finally:
        await pool.close()
    seqs = [r["chain_seq"] for r in await admin_db.fetch(
        "SELECT chain_seq FROM tenant.audit_event WHERE tenant_id = $1 ORDER BY chain_seq", org.id)]
    assert seqs == list(range(1, total + 1))


async def test_the_app_role_cannot_rewrite_or_remove_the_log(app_db, chained):
    org, ids = chained
    async with app_db.acquire() as conn:
        for sql in ("UPDATE audit_event SET hash = '' WHERE id = $1", "DELETE FROM audit_event WHERE id = $1"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(sql, ids[0])
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM audit_chain WHERE tenant_id = $1", org.id)


async def test_retention_removes_a_prefix_and_the_rest_still_verifies(client, world, app_db, admin_db):
    org = await world.org(roles=("owner",))
    now = datetime.now(UTC)
    ids = []
    for i, days_ago in enumerate([40, 35, 31, 20, 10, 1]):
        event = make_event(org.id, i, now - timedelta(days=days_ago))
        await record(app_db, event)
        ids.append(event.id)
    # Organization's own setting wins over the default; 0 keeps everything.
    assert await audit.apply_retention(app_db, org.id, default_days=0) == 0
    await audit.set_retention(app_db, org.id, 30)
    assert await audit.apply_retention(app_db, org.id, default_days=0) == 3
    remaining = [r["id"] for r in await admin_db.fetch(
        "SELECT id FROM tenant.audit_event WHERE tenant_id = $1 ORDER BY chain_seq", org.id)]
    assert remaining == ids[3:]
    head = await admin_db.fetchrow("SELECT * FROM tenant.audit_chain WHERE tenant_id = $1", org.id)
    assert head["checkpoint_seq"] == 3 and len(head["checkpoint_hash"]) == 64
    assert await verify_route(client, org) == {"checked": 3, "first_broken_id": None}
    # Appending goes on from the head; a second pass finds nothing new to remove.
    await record(app_db, make_event(org.id, 9, now))
    assert await audit.apply_retention(app_db, org.id, default_days=0) == 0
    assert await verify_command(org.id) == (0, {"checked": 4, "first_broken_id": None})
    # What remains is still protected: the first kept event altered is named.
    await admin_db.execute("UPDATE tenant.audit_event SET envelope = jsonb_set(envelope, '{source}', '\"x\"') "
                           "WHERE id = $1", ids[3])
    assert await verify_route(client, org) == {"checked": 1, "first_broken_id": str(ids[3])}
    # A broken chain is kept as evidence: retention does not purge over it.
    await audit.set_retention(app_db, org.id, 5)
    assert await audit.apply_retention(app_db, org.id, default_days=0) == 0


async def test_retention_by_default_days_and_a_gap_is_not_hidden(client, world, app_db, admin_db):
    org = await world.org(roles=("owner",))
    now = datetime.now(UTC)
    ids = []
    for i, days_ago in enumerate([9, 8, 2, 1]):
        event = make_event(org.id, i, now - timedelta(days=days_ago))
        await record(app_db, event)
        ids.append(event.id)
    # A removed event inside the part that retention would purge: retention refuses, verify names it.
    await admin_db.execute("DELETE FROM tenant.audit_event WHERE id = $1", ids[0])
    assert await audit.apply_retention(app_db, org.id, default_days=7) == 0
    assert (await verify_route(client, org))["first_broken_id"] == str(ids[1])
    # Restored (as the backup had it), the default retention applies.
    await admin_db.execute("DELETE FROM tenant.audit_chain WHERE tenant_id = $1", org.id)
    await admin_db.execute("DELETE FROM tenant.audit_event WHERE tenant_id = $1", org.id)
    ids = []
    for i, days_ago in enumerate([9, 8, 2, 1]):
        event = make_event(org.id, i, now - timedelta(days=days_ago))
        await record(app_db, event)
        ids.append(event.id)
    assert await audit.apply_retention(app_db, org.id, default_days=7) == 2
    assert await verify_route(client, org) == {"checked": 2, "first_broken_id": None}


async def test_purge_refuses_a_checkpoint_hash_that_is_not_the_stored_one(world, app_db):
    """audit_purge (the owner's function the app role may call) cannot be used to seal a
    made-up state or remove events at will."""
    org = await world.org(roles=("owner",))
    for i in range(3):
        await record(app_db, make_event(org.id, i, datetime.now(UTC) - timedelta(days=50)))
    async with app_db.acquire() as conn:
        with pytest.raises(asyncpg.SerializationError):
            await conn.fetchval("SELECT audit_purge($1, 2, $2)", org.id, "0" * 64)
        assert await conn.fetchval("SELECT audit_purge($1, 99, $2)", org.id, "0" * 64) == 0


async def test_events_recorded_before_the_chain_are_chained_by_the_backfill(client, world, app_db, admin_db):
    """Migration 20261129184014 chains what the old consumer stored (audit_chain_backfill, run by
    the migration as the owner; here again as the superuser for a fresh organization)."""
    org = await world.org(roles=("owner",))
    base = datetime.now(UTC) - timedelta(days=3)
    events = [make_event(org.id, i, base + timedelta(minutes=i)) for i in range(5)]
    for event in reversed(events):  # stored out of order, as deliveries may be
        await admin_db.execute(
            "INSERT INTO tenant.audit_event (id, tenant_id, type, occurred_at, subject_type, subject_id, envelope) "
            "VALUES ($1, $2, $3, $4, 'organization', $5, $6::jsonb)", event.id, org.id, event.type,
            event.occurred_at, str(org.id), event.model_dump_json())
    assert await admin_db.fetchval("SELECT tenant.audit_chain_backfill()") >= 5  # other suites' rows too
    assert await verify_route(client, org) == {"checked": 5, "first_broken_id": None}
    ordered = [r["id"] for r in await admin_db.fetch(
        "SELECT id FROM tenant.audit_event WHERE tenant_id = $1 ORDER BY chain_seq", org.id)]
    assert ordered == [e.id for e in events]
    # The consumer goes on from there, and a second backfill leaves a started chain alone.
    await record(app_db, make_event(org.id, 9, datetime.now(UTC)))
    await admin_db.execute(
        "INSERT INTO tenant.audit_event (id, tenant_id, type, occurred_at, subject_type, subject_id, envelope) "
        "VALUES ($1, $2, 'organization.updated', $3, 'organization', $4, '{}'::jsonb)",
        uuid.uuid4(), org.id, base - timedelta(days=1), str(org.id))
    await admin_db.fetchval("SELECT tenant.audit_chain_backfill()")
    assert await verify_route(client, org) == {"checked": 6, "first_broken_id": None}
    await admin_db.execute("DELETE FROM tenant.audit_event WHERE id = $1", events[2].id)
    assert (await verify_route(client, org))["first_broken_id"] == str(events[3].id)


async def run_command(*args: str) -> tuple[int, str]:
    env = {**os.environ, "AUDIT_DATABASE_URL": app_dsn("tenant"), "AUDIT_DB_CONNECT_ATTEMPTS": "2"}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "tenant_service.audit", *args,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                                                env=env)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode()


async def test_retention_and_purge_commands(client, world, app_db):
    org = await world.org(roles=("owner",))
    now = datetime.now(UTC)
    for i, days_ago in enumerate([50, 45, 3]):
        await record(app_db, make_event(org.id, i, now - timedelta(days=days_ago)))
    assert await run_command("retention", "--organization", str(org.id), "--days", "30") == (0, "")
    code, out = await run_command("purge", "--organization", str(org.id))
    assert code == 0 and out.strip() == f"{org.id}: 2 events removed"
    assert await verify_route(client, org) == {"checked": 1, "first_broken_id": None}
    code, out = await run_command("verify", "--organization", str(org.id))
    assert code == 0 and out.strip() == f"{org.id}: ok, 1 events checked"
    code, out = await run_command("retention", "--organization", str(org.id), "--days", "-1")
    assert code == 2 and "--days" in out
