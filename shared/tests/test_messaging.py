"""The event backbone against the real PostgreSQL and RabbitMQ: outbox, relay, consumers, DLQ."""
import asyncio
import contextlib
import json
import logging
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime

import aio_pika
import pytest
from aiohttp import web
from prometheus_client import REGISTRY
from pydantic import SecretStr

from shared.app import create_service_app
from shared.db import DB_POOL
from shared.messaging import Event, add_event, event_data
from shared.messaging.broker import connect, declare_events_exchange, declare_group_queues
from shared.messaging.catalog import UserRegistered
from shared.messaging.consumer import ATTEMPT_HEADER, EventConsumer, consumer_ctx
from shared.messaging.dlq import list_dead_letters
from shared.messaging.outbox import event_json, new_event
from shared.messaging.relay import OUTBOX_RELAY, OutboxRelay, PublishFailed, backlog, purge_sent
from shared.messaging.testing import assert_poison_is_dead_lettered
from shared.messaging.topology import app_consumer_groups, declare_topology
from shared.testing import AMQP_HOST, AMQP_PORT, AMQP_URL, REPO, TcpProxy, amqp_url_via


class Rollback(Exception):
    pass


async def add_events(pool, n: int, *, type_: str = "thing.happened", rollback: bool = False) -> list[uuid.UUID]:
    ids = []
    try:
        async with pool.acquire() as conn, conn.transaction():
            for i in range(n):
                event = await add_event(conn, source="test", type=type_, subject_type="thing",
                                        subject_id=str(uuid.uuid4()), tenant_id=uuid.uuid4(),
                                        request_id=f"req-{i}", data={"i": i})
                ids.append(event.id)
            if rollback:
                raise Rollback
    except Rollback:
        pass
    return ids


async def effects(pool) -> Counter:
    async with pool.acquire() as conn:
        return Counter(r["event_id"] for r in await conn.fetch("SELECT event_id FROM effect"))


async def wait_until(predicate, *, timeout: float = 15.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        result = await predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(interval)


async def record_effect(conn, event):
    await conn.execute("INSERT INTO effect (event_id) VALUES ($1)", event.id)


@contextlib.asynccontextmanager
async def running(*workers):
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        yield tasks
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t


def make_consumer(pool, exchange, group, handler=record_effect, *, amqp_url=AMQP_URL, **kw) -> EventConsumer:
    kw.setdefault("prefetch", 16)
    return EventConsumer(pool, amqp_url=amqp_url, exchange=exchange, group=group, bindings=["#"],
                         handler=handler, **kw)


def make_relay(pool, settings, *, amqp_url=AMQP_URL, **kw) -> OutboxRelay:
    kw.setdefault("poll_interval_s", 0.2)
    return OutboxRelay(pool, amqp_url=amqp_url, exchange=settings.events_exchange, schema=settings.db_schema, **kw)


def new_group(cleanup) -> str:
    group = f"test_{uuid.uuid4().hex[:10]}"
    cleanup[0].append(group)
    return group


async def connected(consumer):
    async def check():
        return consumer.connected
    await wait_until(check, what="consumer connected")


def sample(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


# ---------------------------------------------------------------- outbox

async def test_add_event_requires_the_callers_transaction(messaging_pool):
    async with messaging_pool.acquire() as conn:
        with pytest.raises(RuntimeError):
            await add_event(conn, source="test", type="thing.happened", subject_type="thing", subject_id="1")
        async with conn.transaction():
            with pytest.raises(ValueError):
                await add_event(conn, source="test", type="user.registered", subject_type="user", subject_id="1",
                                data={"profile": {"password": "secret"}})


async def test_a_rolled_back_transaction_publishes_nothing(messaging_pool, messaging_settings, broker_cleanup):
    group = new_group(broker_cleanup)
    consumer = make_consumer(messaging_pool, messaging_settings.events_exchange, group)
    relay = make_relay(messaging_pool, messaging_settings)
    async with running(consumer, relay):
        await connected(consumer)
        rolled_back = await add_events(messaging_pool, 3, rollback=True)
        committed = await add_events(messaging_pool, 3)

        async def all_committed_applied():
            return set(committed) <= set(await effects(messaging_pool))
        await wait_until(all_committed_applied, what="committed events")

        # A consumer may apply an event before the relay has recorded its broker confirm.
        async def outbox_drained():
            return (await backlog(messaging_pool))[0] == 0
        await wait_until(outbox_drained, what="an empty outbox")
        await asyncio.sleep(0.5)  # room for anything else the relay might (wrongly) publish
    seen = await effects(messaging_pool)
    assert not set(rolled_back) & set(seen)
    assert seen == Counter({i: 1 for i in committed})
    assert relay.published_total == 3


# ---------------------------------------------------------------- broker outage

async def test_writes_succeed_while_the_broker_is_unreachable_and_every_event_arrives_after(
        messaging_pool, messaging_settings, broker_cleanup, aiohttp_client):
    proxy = await TcpProxy(AMQP_HOST, AMQP_PORT).start()
    settings = messaging_settings.model_copy(update={
        "amqp_url": SecretStr(amqp_url_via(proxy.port)), "service_name": "outage-test"})
    # A superuser on a scratch schema: the skeleton under test, not a service's least-privilege role.
    client = await aiohttp_client(create_service_app(settings, check_role=False))
    app = client.app
    group = new_group(broker_cleanup)
    consumer = make_consumer(messaging_pool, settings.events_exchange, group)
    try:
        async with running(consumer):
            await connected(consumer)

            async def relay_up():
                return app[OUTBOX_RELAY].broker_connected
            await wait_until(relay_up, what="relay connected")
            before = await add_events(app[DB_POOL], 2)
            await wait_until(lambda: _has_all(messaging_pool, before), what="events before the outage")

            await proxy.cut()
            started = time.monotonic()
            during = []
            for _ in range(5):
                during += await add_events(app[DB_POOL], 4)
            assert time.monotonic() - started < 2.0, "writes must not wait for the broker"
            await asyncio.sleep(0.5)
            assert not app[OUTBOX_RELAY].broker_connected
            assert not set(during) & set(await effects(messaging_pool))
            pending, _ = await backlog(app[DB_POOL])
            assert pending == 20
            resp = await client.get("/health/ready")
            body = await resp.json()
            assert resp.status == 200, body  # the broker is reported, not required
            assert body["checks"]["rabbitmq"]["ok"] is False

            await proxy.restore()
            await wait_until(lambda: _has_all(messaging_pool, during), timeout=20, what="events after the outage")
            body = await (await client.get("/health/ready")).json()
            assert body["checks"]["rabbitmq"]["ok"] is True
    finally:
        await proxy.close()
    seen = await effects(messaging_pool)
    assert all(seen[i] == 1 for i in before + during)
    assert (await backlog(messaging_pool))[0] == 0


async def test_a_write_wakes_the_relay_of_its_process_and_nothing_else_notifies(
        messaging_pool, messaging_settings, broker_cleanup, aiohttp_client):
    """The app wakes its relay once a write has answered, so its events go at once with polling
    far away; a read, and a write refused, do not. The outbox sends no NOTIFY any more."""
    settings = messaging_settings.model_copy(update={"relay_poll_interval_s": 30.0, "service_name": "wake-test"})
    app = create_service_app(settings, check_role=False)

    async def write(request: web.Request) -> web.Response:
        ids = await add_events(request.app[DB_POOL], 1)
        return web.json_response({"id": str(ids[0])}, status=201)

    async def refused(request: web.Request) -> web.Response:
        await add_events(request.app[DB_POOL], 1)  # committed, but the answer is a 4xx
        return web.json_response({"title": "no"}, status=409)
    app.router.add_post("/things", write)
    app.router.add_post("/refused", refused)
    client = await aiohttp_client(app)
    relay = client.app[OUTBOX_RELAY]
    group = new_group(broker_cleanup)
    consumer = make_consumer(messaging_pool, settings.events_exchange, group)
    wakes: list[int] = []
    original_wake = relay.wake

    def counted_wake(*, lazy: bool = False) -> None:
        wakes.append(1)
        original_wake(lazy=lazy)
    relay.wake = counted_wake
    async with running(consumer):
        await connected(consumer)

        async def relay_up():
            return relay.broker_connected
        await wait_until(relay_up, what="relay connected")
        await asyncio.sleep(0.3)  # its first look at the outbox is behind it
        started = time.monotonic()
        resp = await client.post("/things")
        assert resp.status == 201
        event_id = uuid.UUID((await resp.json())["id"])
        await wait_until(lambda: _has_all(messaging_pool, [event_id]), timeout=5, what="the write's event")
        assert time.monotonic() - started < 2.0  # not the 30 s poll
        assert len(wakes) == 1
        assert (await client.get("/health/live")).status == 200
        assert (await client.post("/refused")).status == 409
        assert len(wakes) == 1
    async with messaging_pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'outbox'::regclass "
                                   "AND NOT tgisinternal") == 0


async def test_a_consumer_wakes_the_relay_of_its_app_after_a_commit(
        messaging_pool, messaging_settings, broker_cleanup, aiohttp_client):
    """Events a handler adds to the outbox go at once: the consumer wakes its app's relay once the
    batch committed, with polling far away."""
    settings = messaging_settings.model_copy(update={"relay_poll_interval_s": 30.0, "service_name": "chain-test"})
    source_group, sink_group = new_group(broker_cleanup), new_group(broker_cleanup)
    derived: dict[uuid.UUID, uuid.UUID] = {}

    async def derive(conn, event):
        if event.type == "thing.happened":  # one event in, one event out, in the same transaction
            out = await add_event(conn, source="test", type="thing.derived", subject_type="thing",
                                  subject_id=str(event.id), tenant_id=event.tenant_id, data={})
            derived[event.id] = out.id
    app = create_service_app(settings, check_role=False)
    app.cleanup_ctx.append(consumer_ctx(settings, group=source_group, bindings=["thing.happened"], handler=derive))
    client = await aiohttp_client(app)
    relay = client.app[OUTBOX_RELAY]
    sink = make_consumer(messaging_pool, settings.events_exchange, sink_group)

    async def relay_up():
        return relay.broker_connected
    await wait_until(relay_up, what="relay connected")
    async with running(sink):
        await connected(sink)
        await asyncio.sleep(0.3)  # the relay's first look at the outbox is behind it
        [event_id] = await add_events(messaging_pool, 1)
        relay.wake()  # the write that added it answered (as wake_relay_after_write does)

        async def derived_seen():
            return event_id in derived and await _has_all(messaging_pool, [derived[event_id]])
        started = time.monotonic()
        await wait_until(derived_seen, timeout=10, what="the derived event")
        assert time.monotonic() - started < 5.0  # not the 30 s poll


async def _has_all(pool, ids) -> bool:
    return set(ids) <= set(await effects(pool))


# ---------------------------------------------------------------- replicas

@pytest.mark.parametrize("max_batch", [1, 8], ids=["single", "batched"])
async def test_two_relays_share_the_outbox_and_publish_every_event_once(
        max_batch, messaging_pool, messaging_settings, broker_cleanup):
    group = new_group(broker_cleanup)
    consumer = make_consumer(messaging_pool, messaging_settings.events_exchange, group, prefetch=64,
                             max_batch=max_batch)
    first = make_relay(messaging_pool, messaging_settings, batch_size=25)
    second = make_relay(messaging_pool, messaging_settings, batch_size=25)
    ids = []
    for _ in range(6):
        ids += await add_events(messaging_pool, 50)
    async with running(consumer):
        await connected(consumer)  # the group's queue exists before anything is published
        async with running(first, second):
            for _ in range(4):
                ids += await add_events(messaging_pool, 25)
            await wait_until(lambda: _has_all(messaging_pool, ids), timeout=30, what="every event")
    seen = await effects(messaging_pool)
    assert len(ids) == 400
    assert all(seen[i] == 1 for i in ids)
    assert first.published_total + second.published_total == 400
    assert (await backlog(messaging_pool))[0] == 0


# ---------------------------------------------------------------- consumer crash

@pytest.mark.parametrize("max_batch", [1, 8], ids=["single", "batched"])
async def test_a_consumer_killed_mid_handler_gets_the_message_again_and_applies_it_once(
        max_batch, messaging_pool, messaging_settings, broker_cleanup):
    group = new_group(broker_cleanup)
    proxy = await TcpProxy(AMQP_HOST, AMQP_PORT).start()
    entered, gate = asyncio.Event(), asyncio.Event()
    outcome = {}

    async def blocking(conn, event):
        await record_effect(conn, event)
        entered.set()
        try:
            await gate.wait()
        except asyncio.CancelledError:
            outcome["first"] = "cancelled"
            raise

    doomed = make_consumer(messaging_pool, messaging_settings.events_exchange, group, blocking,
                           amqp_url=amqp_url_via(proxy.port), max_batch=max_batch)
    fresh = make_consumer(messaging_pool, messaging_settings.events_exchange, group, max_batch=max_batch)
    relay = make_relay(messaging_pool, messaging_settings)
    try:
        async with running(doomed, relay):
            await connected(doomed)
            [event_id] = await add_events(messaging_pool, 1)
            await asyncio.wait_for(entered.wait(), 10)
            await proxy.cut()  # the consumer's process "dies": its broker connection drops mid-handler

            async def doomed_down():
                return not doomed.connected
            await wait_until(doomed_down, what="consumer disconnected")
            await wait_until(lambda: _first_cancelled(outcome), timeout=5, what="handler cancelled")
            async with running(fresh):
                await wait_until(lambda: _has_all(messaging_pool, [event_id]), what="redelivery applied")
                gate.set()
                await asyncio.sleep(0.3)
    finally:
        await proxy.close()
    assert (await effects(messaging_pool))[event_id] == 1
    assert fresh.processed_total == 1
    async with messaging_pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM inbox WHERE consumer = $1", group) == 1


async def _first_cancelled(outcome) -> bool:
    return outcome.get("first") == "cancelled"


@pytest.mark.parametrize("max_batch", [1, 8], ids=["single", "batched"])
async def test_a_redelivered_event_has_no_second_effect(
        max_batch, messaging_pool, messaging_settings, broker_cleanup):
    group = new_group(broker_cleanup)
    consumer = make_consumer(messaging_pool, messaging_settings.events_exchange, group, max_batch=max_batch)
    relay = make_relay(messaging_pool, messaging_settings)
    async with running(consumer, relay):
        await connected(consumer)
        [event_id] = await add_events(messaging_pool, 1)
        await wait_until(lambda: _has_all(messaging_pool, [event_id]), what="first delivery")
        # The relay publishes again (as after a lost confirm): the inbox makes it a no-op.
        async with messaging_pool.acquire() as conn:
            await conn.execute("UPDATE outbox SET sent_at = NULL WHERE id = $1", event_id)
        duplicates = sample("events_duplicates_total", group=group)

        async def duplicate_seen():
            return sample("events_duplicates_total", group=group) > duplicates
        await wait_until(duplicate_seen, what="duplicate delivery")
    assert (await effects(messaging_pool))[event_id] == 1
    assert consumer.processed_total == 1


# ---------------------------------------------------------------- retries and dead letters

@pytest.mark.parametrize("max_batch", [1, 8], ids=["single", "batched"])
async def test_a_poison_message_is_retried_then_parked_and_can_be_requeued(
        max_batch, messaging_pool, messaging_settings, broker_cleanup):
    group = new_group(broker_cleanup)
    poison: set[uuid.UUID] = set()
    calls = Counter()

    async def fragile(conn, event):
        calls[event.id] += 1
        if event.id in poison:
            raise ValueError("cannot apply this one")
        await record_effect(conn, event)

    consumer = make_consumer(messaging_pool, messaging_settings.events_exchange, group, fragile,
                             max_retries=2, retry_delay_ms=50, max_batch=max_batch)
    relay = make_relay(messaging_pool, messaging_settings)
    async with running(consumer, relay):
        await connected(consumer)
        async with messaging_pool.acquire() as conn, conn.transaction():
            bad = await add_event(conn, source="test", type="thing.broke", subject_type="thing", subject_id="x")
            poison.add(bad.id)
        good = await add_events(messaging_pool, 1)

        async def parked():
            total, items = await list_dead_letters(AMQP_URL, group)
            return items if total == 1 else None
        [item] = await wait_until(parked, what="message in the DLQ")
        await wait_until(lambda: _has_all(messaging_pool, good), what="good event")
        assert item.message_id == str(bad.id)
        assert item.type == "thing.broke"
        assert item.reason == "retries_exhausted" and item.attempts == 2
        assert "ValueError" in item.error
        # The first try and two delayed retries (batched: the batch, then the first try alone).
        assert calls[bad.id] == (4 if max_batch > 1 else 3)
        assert sample("events_retried_total", group=group) == 2
        assert sample("events_dead_lettered_total", group=group, reason="retries_exhausted") == 1

        env = {**os.environ, "AMQP_URL": AMQP_URL, "EVENTS_EXCHANGE": messaging_settings.events_exchange}
        listed = subprocess.run([sys.executable, "-m", "shared.messaging.dlq", "list", "--group", group, "--json"],
                                cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
        assert listed.returncode == 0, listed.stderr
        assert json.loads(listed.stdout.strip())["message_id"] == str(bad.id)

        poison.clear()  # the bug is fixed; the operator requeues
        requeued = subprocess.run([sys.executable, "-m", "shared.messaging.dlq", "requeue", "--group", group],
                                  cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
        assert requeued.returncode == 0, requeued.stderr
        assert "requeued 1 message" in requeued.stdout
        await wait_until(lambda: _has_all(messaging_pool, [bad.id]), what="requeued event applied")
    assert (await effects(messaging_pool))[bad.id] == 1
    total, _ = await list_dead_letters(AMQP_URL, group)
    assert total == 0


async def test_an_unparseable_message_goes_straight_to_the_dlq(messaging_pool, messaging_settings, broker_cleanup):
    group = new_group(broker_cleanup)
    calls = []

    async def handler(conn, event):
        calls.append(event)

    consumer = make_consumer(messaging_pool, messaging_settings.events_exchange, group, handler, max_retries=3)
    async with running(consumer):
        await connected(consumer)
        connection = await connect(AMQP_URL)
        try:
            channel = await connection.channel()
            exchange = await declare_events_exchange(channel, messaging_settings.events_exchange)
            for body in (b"not json", b'{"id": "nope"}'):
                await exchange.publish(aio_pika.Message(body, message_id=str(uuid.uuid4())), routing_key="x.y")
        finally:
            await connection.close()

        async def parked():
            total, items = await list_dead_letters(AMQP_URL, group)
            return items if total == 2 else None
        items = await wait_until(parked, what="both messages parked")
    assert {i.reason for i in items} == {"unparseable"}
    assert all(i.attempts is None and i.type == "x.y" for i in items)
    assert calls == []


@pytest.mark.parametrize("max_batch", [1, 8], ids=["single", "batched"])
async def test_a_malformed_event_is_dead_lettered_at_once_logged_once_and_consuming_goes_on(
        max_batch, messaging_pool, messaging_settings, broker_cleanup, caplog):
    """The poison-event policy (shared.messaging.poison), on the consumer every service uses."""
    group = new_group(broker_cleanup)
    calls = Counter()

    async def strict(conn, event):
        calls[event.id] += 1
        data = event_data(event, UserRegistered)
        await conn.execute("INSERT INTO effect (event_id) VALUES ($1)", event.id)
        assert data.user_id

    def registered(data) -> Event:
        return Event(id=uuid.uuid4(), type="user.registered", occurred_at=datetime.now(UTC), source="test",
                     actor={"user_id": None, "ip": None}, subject={"type": "user", "id": "x"}, data=data)

    secret = f"secret-{uuid.uuid4().hex}"
    bad = registered({"user_id": "not-a-uuid", "email": secret, "name": "x"})
    good = registered({"user_id": str(uuid.uuid4()), "email": "a@example.com", "name": "A", "added_later": 1})
    consumer = make_consumer(messaging_pool, messaging_settings.events_exchange, group, strict,
                             max_retries=3, retry_delay_ms=50, max_batch=max_batch)
    caplog.set_level(logging.INFO, logger="shared.messaging.consumer")
    async with running(consumer):
        await connected(consumer)
        items = await assert_poison_is_dead_lettered(
            AMQP_URL, messaging_settings.events_exchange, group, malformed=[bad], good=good,
            applied=lambda: _has_all(messaging_pool, [good.id]))
    [parked] = [i for i in items if i.reason == "malformed"]
    assert parked.error == "user.registered: data.user_id: uuid_parsing"
    assert calls[bad.id] == (2 if max_batch > 1 else 1)  # batched: the batch, then alone; never retried
    assert sample("events_dead_lettered_total", group=group, reason="malformed") == 1
    assert sample("events_dead_lettered_total", group=group, reason="unparseable") == 2
    assert sample("events_retried_total", group=group) == 0
    # Logged once each, at ERROR, with the event's id and type, and never the payload.
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert sorted(r.reason for r in errors) == ["malformed", "unparseable", "unparseable"]
    assert {r.event_id for r in errors if r.reason == "malformed"} == {str(bad.id)}
    assert all(r.event_type == "user.registered" for r in errors)
    assert not [r for r in caplog.records if secret in r.getMessage() or secret in str(vars(r))]


async def test_infrastructure_failures_do_not_spend_the_retry_budget(
        messaging_pool, messaging_settings, broker_cleanup):
    group = new_group(broker_cleanup)
    failures = {"left": 3}

    async def flaky(conn, event):
        if failures["left"]:
            failures["left"] -= 1
            raise ConnectionResetError("database went away")
        await record_effect(conn, event)

    consumer = make_consumer(messaging_pool, messaging_settings.events_exchange, group, flaky,
                             max_retries=1, retry_delay_ms=30)
    relay = make_relay(messaging_pool, messaging_settings)
    async with running(consumer, relay):
        await connected(consumer)
        ids = await add_events(messaging_pool, 1)
        await wait_until(lambda: _has_all(messaging_pool, ids), what="event applied after transient failures")
    total, _ = await list_dead_letters(AMQP_URL, group)
    assert total == 0


# ---------------------------------------------------------------- housekeeping and metrics

async def test_sent_events_are_purged_after_the_retention_and_metrics_follow(
        messaging_pool, messaging_settings, broker_cleanup):
    group = new_group(broker_cleanup)
    schema = messaging_settings.db_schema
    consumer = make_consumer(messaging_pool, messaging_settings.events_exchange, group)
    relay = make_relay(messaging_pool, messaging_settings, metrics_interval_s=0.1)
    published_before = sample("events_published_total", schema=schema)
    async with running(consumer, relay):
        await connected(consumer)
        pending_ids = await add_events(messaging_pool, 3)

        async def gauge_reports_then_drains():
            return sample("outbox_pending_events", schema=schema) == 0 and \
                sample("events_published_total", schema=schema) - published_before == 3
        await wait_until(gauge_reports_then_drains, what="metrics")
        await wait_until(lambda: _has_all(messaging_pool, pending_ids), what="events applied")
    assert sample("outbox_relay_broker_connected", schema=schema) == 0
    async with messaging_pool.acquire() as conn:
        await conn.execute("UPDATE outbox SET sent_at = now() - interval '2 hours' WHERE id = $1", pending_ids[0])
        unsent = await add_events(messaging_pool, 1)
        assert await purge_sent(messaging_pool, 3600) == 1
        left = {r["id"] for r in await conn.fetch("SELECT id FROM outbox")}
    assert left == set(pending_ids[1:]) | set(unsent)


async def test_the_dlq_command_refuses_an_unknown_group(capsys):
    from shared.messaging import dlq
    group = f"nobody_{uuid.uuid4().hex[:8]}"
    assert await asyncio.to_thread(dlq.main, ["list", "--group", group]) == 1
    assert await asyncio.to_thread(dlq.main, ["requeue", "--group", group]) == 1
    assert "no queues for consumer group" in capsys.readouterr().err


# ---------------------------------------------------------------- topology (declare-queues)

async def test_events_published_before_the_consumer_first_ran_reach_it(
        messaging_pool, messaging_settings, broker_cleanup):
    group = new_group(broker_cleanup)
    app = web.Application()
    app.cleanup_ctx.append(consumer_ctx(messaging_settings, group=group, bindings=["thing.*"], handler=record_effect))
    groups = app_consumer_groups(app)
    assert groups == [(group, ["thing.*"])]

    await declare_topology(AMQP_URL, messaging_settings.events_exchange, groups)
    ids = await add_events(messaging_pool, 5)
    relay = make_relay(messaging_pool, messaging_settings)
    async with running(relay):
        async def all_sent():
            async with messaging_pool.acquire() as conn:
                return await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0
        await wait_until(all_sent, what="outbox drained")

    # Only now does the consumer start for the first time.
    consumer = EventConsumer(messaging_pool, amqp_url=AMQP_URL, exchange=messaging_settings.events_exchange,
                             group=group, bindings=["thing.*"], handler=record_effect)
    async with running(consumer):
        await connected(consumer)

        async def all_applied():
            return set((await effects(messaging_pool)).keys()) == set(ids)
        await wait_until(all_applied, what="every early event applied")
    assert all(n == 1 for n in (await effects(messaging_pool)).values())


# ---------------------------------------------------------------- lingering (batches under a steady flow)

def count_calls(obj, name: str, sizes: list, size) -> None:
    """Record ``size(args, result)`` of each call of ``obj.name``, the method itself unchanged."""
    method = getattr(obj, name)

    async def counted(*args):
        result = await method(*args)
        sizes.append(size(args, result))
        return result
    setattr(obj, name, counted)


async def until_counted(sizes: list, total: int) -> None:
    """Until the calls ``count_calls`` records add up to ``total``: a batch's effects are seen (the
    consumer applied it, or its transaction committed) before its call has returned."""
    async def counted():
        return sum(sizes) == total
    await wait_until(counted, what=f"calls adding up to {total}")


async def test_the_relay_publishes_a_steady_flow_in_batches_and_a_lone_event_at_once(
        messaging_pool, messaging_settings, broker_cleanup):
    group = new_group(broker_cleanup)
    consumer = make_consumer(messaging_pool, messaging_settings.events_exchange, group)
    relay = make_relay(messaging_pool, messaging_settings, linger_s=2.0, poll_interval_s=5.0)
    batches: list[int] = []
    count_calls(relay, "publish_batch", batches, lambda args, published: published)

    async def write(n: int) -> list[uuid.UUID]:  # a write, then the wake-up its answer gives
        ids = await add_events(messaging_pool, n)
        relay.wake()
        return ids
    async with running(consumer, relay):
        await connected(consumer)
        await asyncio.sleep(0.3)  # the relay's first look (at start) is behind it
        started = time.monotonic()
        first = await write(1)
        await wait_until(lambda: _has_all(messaging_pool, first), what="the first event")
        # Nothing was published in the linger before it: it went at once.
        assert time.monotonic() - started < 1.5
        # Five events in five transactions right after: one batch, once the linger has passed.
        flow = []
        for _ in range(5):
            flow += await write(1)
        await wait_until(lambda: _has_all(messaging_pool, flow), what="the flow")
        assert time.monotonic() - started >= 2.0
        await until_counted(batches, 6)
        assert [n for n in batches if n] == [1, 5]
        # After a quiet spell longer than the linger, an event goes at once again.
        await asyncio.sleep(2.1)
        started = time.monotonic()
        lone = await write(1)
        await wait_until(lambda: _has_all(messaging_pool, lone), what="the lone event")
        assert time.monotonic() - started < 1.5
        await until_counted(batches, 7)
    assert [n for n in batches if n] == [1, 5, 1]
    assert (await effects(messaging_pool)) == Counter({i: 1 for i in first + flow + lone})


async def test_lazy_wake_ups_wait_for_the_lazy_linger_until_an_ordinary_one_comes(
        messaging_pool, messaging_settings, broker_cleanup):
    group = new_group(broker_cleanup)
    consumer = make_consumer(messaging_pool, messaging_settings.events_exchange, group)
    # No poll during the test: only wake-ups move the relay.
    relay = make_relay(messaging_pool, messaging_settings, linger_s=0.2, lazy_linger_s=30.0, poll_interval_s=60.0)
    batches: list[int] = []
    count_calls(relay, "publish_batch", batches, lambda args, published: published)

    async def write(*, lazy: bool) -> list[uuid.UUID]:
        ids = await add_events(messaging_pool, 1)
        relay.wake(lazy=lazy)
        return ids

    async def unsent(ids: list[uuid.UUID]) -> int:
        async with messaging_pool.acquire() as conn:
            return await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL AND id = ANY($1::uuid[])",
                                       ids)
    async with running(consumer, relay):
        await connected(consumer)
        await asyncio.sleep(0.3)  # the relay's first look (at start) is behind it
        # A lazy event after a quiet spell goes at once, like any other.
        first = await write(lazy=True)
        await wait_until(lambda: _has_all(messaging_pool, first), what="the first event")
        # Lazy events right after it are held well past the ordinary linger...
        held = [i for _ in range(3) for i in await write(lazy=True)]
        await asyncio.sleep(1.0)
        assert await unsent(held) == 3
        # ...until an ordinary write comes: then they all go in one batch, at once.
        started = time.monotonic()
        held += await write(lazy=False)
        await wait_until(lambda: _has_all(messaging_pool, held), what="the held events")
        assert time.monotonic() - started < 5.0
        await until_counted(batches, 5)
    assert [n for n in batches if n] == [1, 4]
    assert (await effects(messaging_pool)) == Counter({i: 1 for i in first + held})


def record_acks(monkeypatch, acks: list) -> None:
    """Record (delivery tag, multiple) of every ack a consumer sends, the ack itself unchanged."""
    original = aio_pika.IncomingMessage.ack

    async def counted(self, multiple: bool = False):
        acks.append((self.delivery_tag, multiple))
        return await original(self, multiple=multiple)
    monkeypatch.setattr(aio_pika.IncomingMessage, "ack", counted)


async def waiting_in(queue_name: str) -> int:
    """Messages ready in a queue (what a consumer left unacked is ready again once it is gone)."""
    connection = await connect(AMQP_URL)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(queue_name, passive=True)
        return queue.declaration_result.message_count or 0
    finally:
        await connection.close()


async def test_a_committed_batch_is_acked_with_one_frame(
        messaging_pool, messaging_settings, broker_cleanup, monkeypatch):
    group = new_group(broker_cleanup)
    acks: list = []
    record_acks(monkeypatch, acks)
    consumer = make_consumer(messaging_pool, messaging_settings.events_exchange, group, max_batch=8,
                             batch_linger_s=0.5)
    relay = make_relay(messaging_pool, messaging_settings)
    batches: list[int] = []
    count_calls(consumer, "process_batch", batches, lambda args, applied: len(args[0]))
    async with running(consumer, relay):
        await connected(consumer)
        ids = await add_events(messaging_pool, 6)  # one commit: the relay publishes them as one burst
        await wait_until(lambda: _has_all(messaging_pool, ids), what="every event")

        async def acked():
            return acks
        await wait_until(acked, what="the batch's ack")
        await asyncio.sleep(0.2)
    assert batches == [6]
    assert len(acks) == 1 and acks[0][1] is True  # basic.ack multiple, up to the newest delivery
    await asyncio.sleep(0.5)  # the consumer's connection closes: anything unacked would be ready again
    assert await waiting_in(group) == 0
    assert (await effects(messaging_pool)) == Counter({i: 1 for i in ids})


async def test_a_batch_ack_never_covers_an_older_delivery_still_in_hand(
        messaging_pool, messaging_settings, broker_cleanup, monkeypatch):
    """A retried delivery is handled alone, outside the batches; while it is in hand, a batch of
    newer deliveries that commits is acked message by message, never by a multiple ack that
    would take the older one with it: when the consumer dies, the older one comes again."""
    group = new_group(broker_cleanup)
    acks: list = []
    record_acks(monkeypatch, acks)
    held = new_event(source="test", type="thing.happened", subject_type="thing", subject_id="held",
                     tenant_id=uuid.uuid4(), data={})
    entered, gate = asyncio.Event(), asyncio.Event()

    async def holding(conn, event):
        await record_effect(conn, event)
        if event.id == held.id:
            entered.set()
            await gate.wait()

    proxy = await TcpProxy(AMQP_HOST, AMQP_PORT).start()
    doomed = make_consumer(messaging_pool, messaging_settings.events_exchange, group, holding,
                           amqp_url=amqp_url_via(proxy.port), max_batch=8, batch_linger_s=0.2)
    relay = make_relay(messaging_pool, messaging_settings)
    try:
        async with running(doomed, relay):
            await connected(doomed)
            connection = await connect(AMQP_URL)
            try:  # the held event, as a retry delivers it (x-attempt): handled on its own
                channel = await connection.channel()
                exchange = await declare_events_exchange(channel, messaging_settings.events_exchange)
                await exchange.publish(aio_pika.Message(event_json(held).encode(), headers={ATTEMPT_HEADER: 1},
                                                        message_id=str(held.id)), routing_key=held.type)
            finally:
                await connection.close()
            await asyncio.wait_for(entered.wait(), 10)
            ids = await add_events(messaging_pool, 5)
            await wait_until(lambda: _has_all(messaging_pool, ids), what="the newer events")
            await asyncio.sleep(0.3)  # their acks are sent after the commit
            assert len(acks) == 5 and not any(multiple for _, multiple in acks)
            await proxy.cut()  # the consumer dies with the held event in hand

            async def doomed_down():
                return not doomed.connected
            await wait_until(doomed_down, what="consumer disconnected")
        fresh = make_consumer(messaging_pool, messaging_settings.events_exchange, group, max_batch=8)
        async with running(fresh):
            await wait_until(lambda: _has_all(messaging_pool, [held.id]), what="the held event, delivered again")
    finally:
        gate.set()
        await proxy.close()
    assert (await effects(messaging_pool)) == Counter({i: 1 for i in [*ids, held.id]})


async def test_a_batching_consumer_gathers_a_burst_into_one_transaction(
        messaging_pool, messaging_settings, broker_cleanup):
    group = new_group(broker_cleanup)
    consumer = make_consumer(messaging_pool, messaging_settings.events_exchange, group, max_batch=8,
                             batch_linger_s=1.0)
    relay = make_relay(messaging_pool, messaging_settings)  # publishes each event as it comes
    batches: list[int] = []
    count_calls(consumer, "process_batch", batches, lambda args, applied: len(args[0]))
    async with running(consumer, relay):
        await connected(consumer)
        started = time.monotonic()
        ids = []
        for _ in range(6):
            ids += await add_events(messaging_pool, 1)
            await asyncio.sleep(0.05)
        await wait_until(lambda: _has_all(messaging_pool, ids), what="every event")
        # The first delivery waited the linger for the ones right behind it: one transaction.
        assert time.monotonic() - started >= 1.0
    assert batches == [6]
    assert (await effects(messaging_pool)) == Counter({i: 1 for i in ids})
    async with messaging_pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM inbox WHERE consumer = $1", group) == 6


async def test_a_batching_consumer_takes_two_batches_whatever_its_prefetch(
        messaging_pool, messaging_settings, broker_cleanup):
    """A batch stays unacked until it commits: with a prefetch below the batch size every batch
    would be cut to the prefetch. The consumer takes at least two batches' deliveries, so a burst
    of 48 goes in batches of up to 24 under a prefetch of 8."""
    group = new_group(broker_cleanup)
    consumer = make_consumer(messaging_pool, messaging_settings.events_exchange, group, prefetch=8, max_batch=24,
                             batch_linger_s=0.5)
    relay = make_relay(messaging_pool, messaging_settings, batch_size=100)
    batches: list[int] = []
    count_calls(consumer, "process_batch", batches, lambda args, applied: len(args[0]))
    async with running(consumer, relay):
        await connected(consumer)
        ids = await add_events(messaging_pool, 48)  # one commit: one burst
        await wait_until(lambda: _has_all(messaging_pool, ids), what="every event")
        await until_counted(batches, 48)
    assert sum(batches) == 48 and max(batches) == 24, batches
    assert consumer.prefetch == 48
    assert (await effects(messaging_pool)) == Counter({i: 1 for i in ids})


# ---------------------------------------------------------------- the broker's answers to a batch

async def _sent_and_attempts(pool, ids) -> dict:
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT id, sent_at IS NOT NULL AS sent, attempts FROM outbox WHERE id = ANY($1)", ids)
    return {r["id"]: (r["sent"], r["attempts"]) for r in rows}


async def test_a_batch_with_events_no_queue_takes_is_answered_event_by_event(
        messaging_pool, messaging_settings, broker_cleanup):
    """One batch, one write: the events a queue is bound for are confirmed, the others come back
    (no queue: counted, logged, marked sent as the contract's unroutable events are); each answer
    reaches its own event, whatever the order."""
    group = new_group(broker_cleanup)
    schema = messaging_settings.db_schema
    connection = await connect(AMQP_URL)
    try:
        channel = await connection.channel()
        exchange = await declare_events_exchange(channel, messaging_settings.events_exchange)
        main, _, _ = await declare_group_queues(channel, group)
        await main.bind(exchange, routing_key="thing.bound")
    finally:
        await connection.close()
    ids: list[uuid.UUID] = []
    for i in range(12):
        ids += await add_events(messaging_pool, 1, type_="thing.bound" if i % 3 else "thing.unbound")
    bound = {ids[i] for i in range(12) if i % 3}
    relay = make_relay(messaging_pool, messaging_settings, batch_size=100)
    unroutable_before = sample("events_unroutable_total", schema=schema)
    connection = await connect(AMQP_URL)
    try:
        channel = await connection.channel(publisher_confirms=True)
        assert await relay.publish_batch(channel) == 12
    finally:
        await connection.close()
    assert sample("events_unroutable_total", schema=schema) - unroutable_before == 4
    assert all(sent for sent, _ in (await _sent_and_attempts(messaging_pool, ids)).values())
    assert await waiting_in(group) == len(bound)


async def test_events_the_broker_refuses_stay_pending_and_the_rest_are_sent(
        messaging_pool, messaging_settings, broker_cleanup):
    """A queue that refuses publishes past its length (reject-publish) nacks them: those events
    stay in the outbox with one more attempt, the confirmed ones of the same batch are sent. (A
    classic queue: it applies its length at each publish, where a quorum queue's Raft log may
    take a few more first.)"""
    group = new_group(broker_cleanup)
    broker_cleanup[1].append(group)
    connection = await connect(AMQP_URL)
    try:
        channel = await connection.channel()
        exchange = await declare_events_exchange(channel, messaging_settings.events_exchange)
        queue = await channel.declare_queue(group, durable=True, arguments={
            "x-queue-type": "classic", "x-max-length": 3, "x-overflow": "reject-publish"})
        await queue.bind(exchange, routing_key="thing.limited")
    finally:
        await connection.close()
    ids = await add_events(messaging_pool, 8, type_="thing.limited")
    relay = make_relay(messaging_pool, messaging_settings, batch_size=100)
    connection = await connect(AMQP_URL)
    try:
        channel = await connection.channel(publisher_confirms=True)
        with pytest.raises(PublishFailed, match="5 of 8"):
            await relay.publish_batch(channel)
    finally:
        await connection.close()
    state = await _sent_and_attempts(messaging_pool, ids)
    assert [state[i] for i in ids] == [(True, 0)] * 3 + [(False, 1)] * 5  # in the order published
    assert await waiting_in(group) == 3
