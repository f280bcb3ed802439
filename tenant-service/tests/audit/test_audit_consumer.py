"""The audit consumer end to end: a real relay publishes a (throwaway) outbox to a unique
exchange, the audit app consumes it into tenant.audit_event on the real test database."""
import asyncio
import contextlib
import json
import time
import uuid
from datetime import UTC, datetime

import aio_pika
import asyncpg
import pytest
from pydantic import SecretStr

from shared.config import BaseServiceSettings
from shared.db import DB_POOL, create_pool
from shared.messaging import Event, add_event
from shared.messaging.broker import connect, declare_events_exchange
from shared.messaging.outbox import event_json
from shared.messaging.relay import OutboxRelay
from shared.messaging.testing import assert_poison_is_dead_lettered, delete_broker_objects, scratch_schema
from shared.testing import AMQP_HOST, AMQP_PORT, AMQP_URL, TcpProxy, admin_dsn, amqp_url_via, test_settings
from tenant_service.audit.app import AUDIT_CONSUMER, create_app
from tenant_service.audit.config import AuditSettings
from tenant_service.audit.service import record_events


@pytest.fixture(scope="module")
def exchange():
    return f"events_test_{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def group(exchange):
    name = f"audit_test_{uuid.uuid4().hex[:8]}"
    yield name
    await delete_broker_objects(AMQP_URL, groups=[name])


@pytest.fixture(scope="module", autouse=True)
async def _drop_exchange(exchange):
    yield
    await delete_broker_objects(AMQP_URL, exchange=exchange)


@pytest.fixture
async def source(exchange):
    """A producing service's outbox in a throwaway schema, and its settings."""
    async with scratch_schema() as schema:
        settings = BaseServiceSettings(database_url=admin_dsn(), db_schema=schema, events_exchange=exchange,
                                       db_connect_attempts=3, db_pool_max=4)
        pool = await create_pool(settings)
        yield settings, pool
        await pool.close()


@pytest.fixture
async def admin():
    conn = await asyncpg.connect(admin_dsn())
    yield conn
    await conn.close()


def audit_settings(exchange, group, **kw):
    return test_settings(AuditSettings, "tenant", events_exchange=exchange, consumer_group=group, db_pool_max=4, **kw)


async def start_audit(aiohttp_client, settings):
    client = await aiohttp_client(create_app(settings))
    consumer = client.app[AUDIT_CONSUMER]
    await wait_until(lambda: _true(consumer.connected), what="audit consumer connected")
    return client


async def _true(value):
    return value


async def write_events(pool, n: int, tenant_id=None) -> list:
    events = []
    async with pool.acquire() as conn, conn.transaction():
        for i in range(n):
            events.append(await add_event(
                conn, source="test-service", type="organization.updated", subject_type="organization",
                subject_id=str(tenant_id or uuid.uuid4()), tenant_id=tenant_id or uuid.uuid4(),
                actor_user_id=uuid.uuid4(), actor_ip="203.0.113.9", request_id=f"req-{uuid.uuid4().hex[:12]}",
                data={"changes": {"name": [f"old {i}", f"new {i}"]}}))
    return events


async def audit_counts(admin, ids) -> dict:
    rows = await admin.fetch("SELECT id, count(*) AS n FROM tenant.audit_event WHERE id = ANY($1::uuid[]) GROUP BY id",
                             list(ids))
    return {r["id"]: r["n"] for r in rows}


def batch_sizes(consumer) -> list[int]:
    """The size of every batch ``consumer`` applies from now on (its own process_batch runs)."""
    sizes: list[int] = []
    process_batch = consumer.process_batch

    async def counted(events):
        sizes.append(len(events))
        return await process_batch(events)
    consumer.process_batch = counted
    return sizes


async def wait_until(predicate, *, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running(*relays):
    tasks = [asyncio.create_task(r.run()) for r in relays]
    try:
        yield
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t


def relay_for(settings, pool, *, amqp_url=AMQP_URL, **kw):
    return OutboxRelay(pool, amqp_url=amqp_url, exchange=settings.events_exchange, schema=settings.db_schema,
                       poll_interval_s=0.2, **kw)


async def test_every_event_is_recorded_once_with_its_envelope(aiohttp_client, exchange, group, source, admin):
    settings, pool = source
    await start_audit(aiohttp_client, audit_settings(exchange, group))
    async with running(relay_for(settings, pool)):
        events = await write_events(pool, 3)
        ids = [e.id for e in events]

        async def recorded():
            return len(await audit_counts(admin, ids)) == 3
        await wait_until(recorded, what="audit rows")
    row = await admin.fetchrow("SELECT * FROM tenant.audit_event WHERE id = $1", events[0].id)
    event = events[0]
    assert row["tenant_id"] == event.tenant_id and row["type"] == "organization.updated"
    assert row["occurred_at"] == event.occurred_at
    assert row["actor_user_id"] == event.actor.user_id
    assert (row["subject_type"], row["subject_id"]) == ("organization", event.subject.id)
    assert row["request_id"] == event.request_id
    envelope = json.loads(row["envelope"])
    assert envelope == json.loads(event_json(event))
    assert set(envelope) == {"id", "type", "version", "occurred_at", "source", "tenant_id", "actor", "subject",
                             "request_id", "data"}


async def test_broker_outage_loses_nothing_and_duplicates_nothing(aiohttp_client, exchange, group, source, admin):
    settings, pool = source
    await start_audit(aiohttp_client, audit_settings(exchange, group))
    proxy = await TcpProxy(AMQP_HOST, AMQP_PORT).start()
    relay = relay_for(settings, pool, amqp_url=amqp_url_via(proxy.port))
    try:
        async with running(relay):
            await wait_until(lambda: _true(relay.broker_connected), what="relay connected")
            await proxy.cut()
            started = time.monotonic()
            events = []
            for _ in range(10):
                events += await write_events(pool, 3)
            assert time.monotonic() - started < 2.0  # writes never wait for the broker
            await asyncio.sleep(0.5)
            ids = [e.id for e in events]
            assert await audit_counts(admin, ids) == {}

            await proxy.restore()

            async def all_recorded():
                return len(await audit_counts(admin, ids)) == len(ids)
            await wait_until(all_recorded, what="every event after the outage")
    finally:
        await proxy.close()
    assert set((await audit_counts(admin, ids)).values()) == {1}


async def test_two_relays_and_a_duplicate_publish_still_record_each_event_once(
        aiohttp_client, exchange, group, source, admin):
    settings, pool = source
    client = await start_audit(aiohttp_client, audit_settings(exchange, group))
    events = []
    for _ in range(4):
        events += await write_events(pool, 50)
    async with running(relay_for(settings, pool, batch_size=20), relay_for(settings, pool, batch_size=20)):
        events += await write_events(pool, 50)
        ids = [e.id for e in events]

        async def all_recorded():
            return len(await audit_counts(admin, ids)) == len(ids)
        await wait_until(all_recorded, what="every event")
    # A second copy of an event (as when a confirm is lost and the relay publishes again).
    connection = await connect(AMQP_URL)
    try:
        channel = await connection.channel()
        ex = await declare_events_exchange(channel, exchange)
        await ex.publish(aio_pika.Message(event_json(events[0]).encode(), message_id=str(events[0].id),
                                          content_type="application/json"), routing_key=events[0].type)
    finally:
        await connection.close()
    consumer = client.app[AUDIT_CONSUMER]
    before = consumer.processed_total
    await asyncio.sleep(0.5)
    assert consumer.processed_total == before
    counts = await audit_counts(admin, ids)
    assert len(counts) == 250 and set(counts.values()) == {1}


async def test_readiness_covers_postgres_and_the_consumers_broker_connection(aiohttp_client, exchange, group):
    proxy = await TcpProxy(AMQP_HOST, AMQP_PORT).start()
    settings = audit_settings(exchange, group).model_copy(
        update={"amqp_url": SecretStr(amqp_url_via(proxy.port))})
    try:
        client = await start_audit(aiohttp_client, settings)
        resp = await client.get("/health/ready")
        body = await resp.json()
        assert resp.status == 200, body
        assert body["checks"]["postgres"]["ok"] and body["checks"]["rabbitmq"]["ok"]
        await proxy.cut()

        async def not_ready():
            return (await client.get("/health/ready")).status == 503
        await wait_until(not_ready, what="503 while the broker is unreachable")
        body = await (await client.get("/health/ready")).json()
        assert body["failing"] == ["rabbitmq"]
        await proxy.restore()

        async def ready():
            return (await client.get("/health/ready")).status == 200
        await wait_until(ready, what="ready again")
        assert (await client.get("/metrics")).status == 200
    finally:
        await proxy.close()


async def test_the_app_role_cannot_rewrite_the_audit_log(admin):
    """The consumer's role appends only: an UPDATE or DELETE of an audit row is refused."""
    conn = await asyncpg.connect(test_settings(AuditSettings, "tenant").database_url,
                                 server_settings={"search_path": "tenant"})
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM audit_event WHERE id = $1", uuid.uuid4())
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("UPDATE audit_event SET type = 'x' WHERE id = $1", uuid.uuid4())
    finally:
        await conn.close()


async def test_two_consumer_replicas_build_one_valid_chain_per_organization(
        aiohttp_client, exchange, group, source, admin):
    """Two audit consumers share the group's queue (batches of up to 10 in a transaction) while
    events of three organizations arrive interleaved: each organization still gets one chain,
    positions 1..n without a gap or a fork, and it verifies. Repeated in rounds."""
    from tenant_service.audit.service import verify_chain

    settings, pool = source
    replicas = [await start_audit(aiohttp_client, audit_settings(exchange, group, consumer_batch_max=10))
                for _ in range(2)]
    orgs = [uuid.uuid4() for _ in range(3)]
    ids: list[uuid.UUID] = []

    async def all_recorded():
        return len(await audit_counts(admin, ids)) == len(ids)

    async with running(relay_for(settings, pool, batch_size=25)):
        for _ in range(4):
            for _ in range(20):
                for org in orgs:
                    ids.extend(e.id for e in await write_events(pool, 2, tenant_id=org))
            await wait_until(all_recorded, timeout=60, what="every event")
    assert all(r.app[AUDIT_CONSUMER].processed_total > 0 for r in replicas), "one replica did all the work"
    app_pool = replicas[0].app[DB_POOL]
    for org in orgs:
        seqs = [r["chain_seq"] for r in await admin.fetch(
            "SELECT chain_seq FROM tenant.audit_event WHERE tenant_id = $1 ORDER BY chain_seq", org)]
        assert seqs == list(range(1, len(ids) // 3 + 1))
        result = await verify_chain(app_pool, org)
        assert (result.checked, result.first_broken_id) == (len(ids) // 3, None)


async def test_poison_events_are_dead_lettered_and_the_next_event_is_recorded(aiohttp_client, exchange, group, admin):
    """The audit consumer takes every type and any data: what it cannot record is a message
    that is no envelope (the shared consumer parks it before any handler runs)."""
    await start_audit(aiohttp_client, audit_settings(exchange, group))
    good = Event(id=uuid.uuid4(), type="organization.updated", occurred_at=datetime.now(UTC), source="test-service",
                 tenant_id=uuid.uuid4(), actor={"user_id": None, "ip": None},
                 subject={"type": "organization", "id": "x"}, request_id="req-poison", data={"changes": {}})

    async def recorded() -> bool:
        return bool(await audit_counts(admin, [good.id]))
    await assert_poison_is_dead_lettered(AMQP_URL, exchange, group, malformed=[], good=good, applied=recorded)


async def test_batched_events_of_no_organization_are_recorded_once_each_with_their_columns(
        aiohttp_client, exchange, group, source, admin):
    """A batch's events of no organization go in one statement (record_events), next to chained
    events of the same batch: every column is the event's own, a second copy adds nothing."""
    settings, pool = source
    client = await start_audit(aiohttp_client, audit_settings(exchange, group, consumer_batch_max=20,
                                                              consumer_batch_linger_ms=500))
    consumer = client.app[AUDIT_CONSUMER]
    sizes = batch_sizes(consumer)
    org = uuid.uuid4()
    events = []
    async with running(relay_for(settings, pool)):
        for i in range(12):
            async with pool.acquire() as conn, conn.transaction():
                events.append(await add_event(
                    conn, source="test-service", type="auth.login_succeeded", subject_type="user",
                    subject_id=str(uuid.uuid4()), tenant_id=org if i % 3 == 0 else None, actor_user_id=uuid.uuid4(),
                    actor_ip="203.0.113.7", request_id=f"req-{i}", data={"session_id": str(uuid.uuid4())}))
        ids = [e.id for e in events]

        async def recorded():
            return len(await audit_counts(admin, ids)) == len(ids)
        await wait_until(recorded, what="audit rows")
    assert max(sizes) > 1, "no batch of several deliveries"
    rows = {r["id"]: r for r in await admin.fetch("SELECT * FROM tenant.audit_event WHERE id = ANY($1::uuid[])", ids)}
    for event in events:
        row = rows[event.id]
        assert (row["tenant_id"], row["type"], row["occurred_at"], row["actor_user_id"]) == (
            event.tenant_id, event.type, event.occurred_at, event.actor.user_id)
        assert (row["subject_type"], row["subject_id"], row["request_id"]) == ("user", event.subject.id,
                                                                             event.request_id)
        assert json.loads(row["envelope"]) == json.loads(event_json(event))
        assert (row["chain_seq"] is None) == (event.tenant_id is None)
    # A second copy of an event of no organization, applied in a batch of its own.
    assert await consumer.process_batch([events[1]]) == 0
    async with client.app[DB_POOL].acquire() as conn, conn.transaction():
        await record_events(conn, [events[1], events[2]])  # without the inbox: the primary key holds
    assert set((await audit_counts(admin, ids)).values()) == {1}


def chained_event(org, i: int) -> Event:
    return Event(id=uuid.uuid4(), type="organization.updated", occurred_at=datetime.now(UTC), source="test-service",
                 tenant_id=org, actor={"user_id": str(uuid.uuid4()), "ip": "203.0.113.5"},
                 subject={"type": "organization", "id": str(org)}, request_id=f"req-batch-{i}",
                 data={"changes": {"name": [f"old {i}", f"new ‘{i}’"]}, "n": i})


async def chain_rows(admin, org) -> list:
    return await admin.fetch("SELECT id, chain_seq, prev_hash, hash, envelope::text AS envelope "
                             "FROM tenant.audit_event WHERE tenant_id = $1 ORDER BY chain_seq", org)


async def test_a_batch_appends_each_organizations_events_in_order_on_its_chain(aiohttp_client, exchange, group,
                                                                               admin):
    """record_events appends an organization's events of one batch in one statement: positions
    follow the delivery order from the head on, each hash is the one chain_hash computes over the
    previous hash, the position and the stored envelope, the head moves to the last, and the
    chain verifies, batch after batch, with two organizations' events interleaved."""
    from tenant_service.audit.chain import chain_hash
    from tenant_service.audit.service import verify_chain
    client = await start_audit(aiohttp_client, audit_settings(exchange, group))
    pool = client.app[DB_POOL]
    orgs = sorted([uuid.uuid4(), uuid.uuid4()], reverse=True)  # delivery order is not id order
    sent: dict = {org: [] for org in orgs}
    for round_ in range(3):
        batch = [chained_event(orgs[i % 2], round_ * 10 + i) for i in range(7)]
        for event in batch:
            sent[event.tenant_id].append(event.id)
        async with pool.acquire() as conn, conn.transaction():
            await record_events(conn, batch)
    for org in orgs:
        rows = await chain_rows(admin, org)
        assert [r["id"] for r in rows] == sent[org]
        assert [r["chain_seq"] for r in rows] == list(range(1, len(sent[org]) + 1))
        prev = ""
        for r in rows:
            assert (r["prev_hash"] or "") == prev
            assert r["hash"] == chain_hash(prev, r["chain_seq"], r["envelope"])
            prev = r["hash"]
        head = await admin.fetchrow("SELECT last_seq, last_hash, last_event_id FROM tenant.audit_chain "
                                    "WHERE tenant_id = $1", org)
        assert (head["last_seq"], head["last_hash"], head["last_event_id"]) == (len(rows), prev, rows[-1]["id"])
        result = await verify_chain(pool, org)
        assert (result.checked, result.first_broken_id) == (len(rows), None)


async def test_a_batch_holding_an_event_already_recorded_is_rolled_back_and_applied_one_by_one(
        aiohttp_client, exchange, group, admin):
    """An event already in the log (its inbox row gone, say) inside a batch: the batch statement
    cannot link past it, so record_events refuses the batch (nothing of it stays) and the
    consumer applies its events one by one: each recorded once, the chain without a gap."""
    from tenant_service.audit.service import ChainBatchConflict, verify_chain
    client = await start_audit(aiohttp_client, audit_settings(exchange, group, consumer_batch_max=20,
                                                              consumer_batch_linger_ms=300))
    consumer = client.app[AUDIT_CONSUMER]
    pool = client.app[DB_POOL]
    org = uuid.uuid4()
    first = [chained_event(org, i) for i in range(3)]
    assert await consumer.process_batch(first) == 3
    again = [chained_event(org, 10), first[1], chained_event(org, 11)]
    with pytest.raises(ChainBatchConflict):
        async with pool.acquire() as conn, conn.transaction():
            await record_events(conn, again)
    assert [r["id"] for r in await chain_rows(admin, org)] == [e.id for e in first]
    # Through the broker: the inbox does not know first[1] any more; the three deliveries make one
    # batch (the linger), which fails, and the one-by-one path records the two new events and
    # skips the old one.
    await admin.execute("DELETE FROM tenant.inbox WHERE consumer = $1 AND event_id = $2", group, first[1].id)
    sizes = batch_sizes(consumer)
    connection = await connect(AMQP_URL)
    try:
        channel = await connection.channel()
        events_exchange = await declare_events_exchange(channel, exchange)
        for event in again:
            await events_exchange.publish(aio_pika.Message(event_json(event).encode(), message_id=str(event.id)),
                                          routing_key=event.type)
    finally:
        await connection.close()

    async def recorded():
        return len(await chain_rows(admin, org)) == 5
    await wait_until(recorded, what="the two new events")
    assert sizes == [3]
    await asyncio.sleep(0.3)
    rows = await chain_rows(admin, org)
    assert [r["id"] for r in rows] == [e.id for e in first] + [again[0].id, again[2].id]
    result = await verify_chain(pool, org)
    assert (result.checked, result.first_broken_id) == (5, None)
