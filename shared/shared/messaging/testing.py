"""Test helpers for the event backbone: a throwaway schema holding only the shared outbox and
inbox (so a test's relay never drains a real service's outbox), broker clean-up, publishing as
a producer would, and the poison-event drill every consumer's tests run."""
from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable

import aio_pika
import asyncpg

from ..migrations import SHARED_MIGRATIONS, Runner
from ..testing import TEST_DATABASE, admin_dsn
from .broker import connect, declare_events_exchange, delete_group_queues
from .consumer import EventConsumer
from .dlq import DeadLetter, list_dead_letters
from .envelope import Event
from .outbox import event_json
from .poison import MALFORMED, UNPARSEABLE


@contextlib.asynccontextmanager
async def scratch_schema(database: str = TEST_DATABASE, *, prefix: str = "evt",
                         grant_to: str | None = None) -> AsyncIterator[str]:
    """Create ``<prefix>_<random>`` as postgres with the shared messaging migrations applied;
    drop it afterwards. ``grant_to`` gets usage and DML on it (e.g. a service's app role)."""
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(admin_dsn(database))
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        await Runner(admin_dsn(database), schema, [SHARED_MIGRATIONS], out=open(os.devnull, "w")).up()
        if grant_to:
            await conn.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO "{grant_to}"')
            await conn.execute(
                f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{schema}" TO "{grant_to}"')
        yield schema
    finally:
        with contextlib.suppress(Exception):
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()


async def delete_broker_objects(amqp_url: str, *, exchange: str | None = None, groups: Iterable[str] = (),
                                queues: Iterable[str] = ()) -> None:
    """Delete a test's consumer groups' queues, extra queues and exchange (best effort)."""
    connection = await connect(amqp_url)
    try:
        channel = await connection.channel()
        for group in groups:
            with contextlib.suppress(Exception):
                await delete_group_queues(channel, group)
        for name in queues:
            with contextlib.suppress(Exception):
                await channel.queue_delete(name)
        if exchange:
            with contextlib.suppress(Exception):
                await channel.exchange_delete(exchange)
    finally:
        await connection.close()


async def wait_connected(consumer: EventConsumer, *, timeout: float = 10.0) -> None:
    """Until ``consumer`` holds its broker connection (its queues are declared and bound)."""
    deadline = time.monotonic() + timeout
    while not consumer.connected:
        if time.monotonic() > deadline:
            raise AssertionError(f"consumer {consumer.group} did not connect within {timeout} s")
        await asyncio.sleep(0.05)


async def publish(amqp_url: str, exchange: str, *messages: Event | tuple[str, bytes]) -> None:
    """Publish to the events exchange as a producer does: an Event as its envelope (routing key
    its type, message id its id), or ``(routing key, body)`` as it stands."""
    connection = await connect(amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        ex = await declare_events_exchange(channel, exchange)
        for message in messages:
            if isinstance(message, Event):
                body, key, message_id = event_json(message).encode(), message.type, str(message.id)
            else:
                (key, body), message_id = message, str(uuid.uuid4())
            await ex.publish(aio_pika.Message(body, message_id=message_id, content_type="application/json",
                                              delivery_mode=aio_pika.DeliveryMode.PERSISTENT), routing_key=key)
    finally:
        await connection.close()


async def assert_poison_is_dead_lettered(
        amqp_url: str, exchange: str, group: str, *, malformed: list[Event], good: Event,
        applied: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> list[DeadLetter]:
    """The poison-event policy (shared.messaging.poison) of one running consumer, over the real
    broker: a body that is not JSON, a JSON body that is not an envelope, and each envelope of
    ``malformed`` (data the consumer cannot use) are published, then ``good``. Each poison lands
    in the group's DLQ at once (not retried), ``good`` is applied after them (``applied()``
    becomes true), and nothing else is parked. Returns the dead letters."""
    not_json = (good.type, b"{not json")
    not_an_envelope = (good.type, b'{"id": "not-a-uuid", "type": "' + good.type.encode() + b'"}')
    await publish(amqp_url, exchange, not_json, not_an_envelope, *malformed, good)
    expected = 2 + len(malformed)
    deadline = time.monotonic() + timeout
    while True:
        total, items = await list_dead_letters(amqp_url, group)
        if total >= expected and await applied():
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"{group}: {total} of {expected} poison messages dead-lettered, "
                                 f"good event applied: {await applied()}")
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.3)  # nothing more arrives (the good event is never parked)
    total, items = await list_dead_letters(amqp_url, group)
    assert total == expected, [(i.type, i.reason, i.error) for i in items]
    assert sorted(i.reason or "" for i in items) == sorted([UNPARSEABLE] * 2 + [MALFORMED] * len(malformed))
    assert all(i.attempts is None for i in items), "a poison event is not retried"
    assert all(i.type == good.type for i in items if i.reason == UNPARSEABLE)
    parked = {i.message_id: i for i in items if i.reason == MALFORMED}
    assert set(parked) == {str(e.id) for e in malformed}
    for event in malformed:
        assert parked[str(event.id)].type == event.type
    return items
