"""The outbox relay: publishes committed events to the ``events`` exchange.

It wakes when a write request of its own process has answered (``wake_relay_after_write``: the
request's transaction, and the events it added, committed before the answer) or a consumer of
its app has committed a batch, and polls every ``RELAY_POLL_INTERVAL_S`` for the rest: events
another process added without a relay of its own running, or a background task's. There is no
NOTIFY on the outbox: PostgreSQL takes a lock of the whole database at the commit of every
transaction that notified, and signals every listening backend of the database (every relay and
mailer of every replica), so each write of the system paid for all its listeners. Rows are
claimed with ``FOR UPDATE SKIP LOCKED`` so relays in several
replicas share the work, published as persistent messages on a confirm channel, and marked
sent in the same transaction only once the broker confirmed each of them. Anything that fails
leaves its rows pending (the claim's transaction ends, the locks go) and they are published
again later: at least once, never lost. A rolled-back transaction leaves no row, so nothing is
ever published for it.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Any, cast

import aio_pika
import aiormq
import asyncpg
from aio_pika.abc import AbstractChannel
from aiohttp import web
from aiormq.abc import ChannelFrame, DeliveredMessage
from pamqp.commands import Basic
from pamqp.header import ContentHeader

from ..auth import READ_METHODS
from ..config import BaseServiceSettings
from ..db import DB_POOL
from ..tasks import cancel_and_wait
from . import metrics
from .broker import connect, declare_events_exchange

log = logging.getLogger(__name__)

_MIN_BACKOFF_S, _MAX_BACKOFF_S = 0.2, 5.0
_PURGE_CHUNK = 5000
PERSISTENT = int(aio_pika.DeliveryMode.PERSISTENT)


class PublishFailed(Exception):
    pass


def _forget_message_id(channel: aiormq.Channel, message_id: str, tag: int, _: asyncio.Future[Any]) -> None:
    """A confirmed (or failed) publish no longer maps its message id to its delivery tag (the
    map finds the publish a returned message belongs to), as aiormq's basic_publish does."""
    if channel.message_id_delivery_tag.get(message_id) == tag:
        channel.message_id_delivery_tag.pop(message_id)


class OutboxRelay:
    def __init__(self, pool: asyncpg.Pool, *, amqp_url: str, exchange: str, schema: str,
                 batch_size: int = 200, poll_interval_s: float = 1.0, retention_s: int = 86400,
                 publish_timeout_s: float = 5.0, purge_interval_s: float = 60.0,
                 metrics_interval_s: float = 5.0, max_inflight_batches: int = 2, linger_s: float = 0.0,
                 lazy_linger_s: float = 0.0):
        self.pool, self.amqp_url, self.exchange_name, self.schema = pool, amqp_url, exchange, schema
        self.batch_size, self.poll_interval_s, self.retention_s = batch_size, poll_interval_s, retention_s
        self.publish_timeout_s, self.purge_interval_s = publish_timeout_s, purge_interval_s
        self.metrics_interval_s = metrics_interval_s
        # Under a steady flow of events, batches start at most every linger_s: a batch costs a
        # transaction and a confirm round whatever its size, so a flow of single events pays it
        # per event. An event after a quiet spell goes at once; the wait is at most linger_s.
        self.linger_s = linger_s
        # While every wake-up since the last batch was lazy (``wake(lazy=True)``: events no
        # service acts on soon), batches are spaced by lazy_linger_s instead; an ordinary wake-up
        # (or a poll, for events written elsewhere) cuts the wait back to linger_s.
        self.lazy_linger_s = max(linger_s, lazy_linger_s)
        self._last_batch_at = -1e9
        self._hurry = asyncio.Event()  # an ordinary wake-up since the last batch started
        # Each batch in flight holds a pooled connection: leave most of the pool to requests.
        self.max_inflight_batches = max(1, min(max_inflight_batches, pool.get_max_size() // 4))
        self.broker_connected = False
        self.published_total = 0
        self._wake = asyncio.Event()
        self._last_purge = 0.0
        self._backoff = _MIN_BACKOFF_S

    def wake(self, *, lazy: bool = False) -> None:
        """Events were committed: look now (the linger still spaces batches) instead of at the
        next poll. ``lazy``: the events can wait for the lazy linger (see __init__)."""
        if not lazy:
            self._hurry.set()
        self._wake.set()

    async def _linger(self) -> None:
        """Wait until the next batch may start: linger_s after the last one started, or
        lazy_linger_s while every wake-up since was lazy (an ordinary one ends that wait)."""
        while True:
            hurry = self._hurry.is_set()
            wait = self._last_batch_at + (self.linger_s if hurry else self.lazy_linger_s) - time.monotonic()
            if wait <= 0:
                return
            if hurry:
                await asyncio.sleep(wait)
                return
            # asyncio.timeout, not wait_for (see _run_connected).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._hurry.wait()

    def _set_connected(self, value: bool) -> None:
        self.broker_connected = value
        metrics.RELAY_BROKER_CONNECTED.labels(self.schema).set(1 if value else 0)

    async def run(self) -> None:
        """Run until cancelled; reconnects to PostgreSQL and RabbitMQ with capped backoff while
        the service keeps serving (its writes just wait in the outbox)."""
        gauges = asyncio.create_task(self._gauge_loop(), name=f"outbox-gauges-{self.schema}")
        try:
            while True:
                try:
                    await self._run_connected()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self._set_connected(False)
                    log.warning("outbox relay interrupted, retrying",
                                extra={"schema": self.schema, "error": type(exc).__name__,
                                       "retry_in_s": round(self._backoff, 2)})
                    await asyncio.sleep(self._backoff + random.uniform(0, self._backoff / 2))
                    self._backoff = min(self._backoff * 2, _MAX_BACKOFF_S)
        finally:
            await cancel_and_wait(gauges)

    async def _run_connected(self) -> None:
        lost = asyncio.Event()

        def on_lost(*_args: object) -> None:
            lost.set()
            self._wake.set()
        connection = await connect(self.amqp_url)
        try:
            connection.close_callbacks.add(on_lost)
            channel = await connection.channel(publisher_confirms=True)
            channel.close_callbacks.add(on_lost)
            await declare_events_exchange(channel, self.exchange_name)
            self._set_connected(True)
            self._backoff = _MIN_BACKOFF_S
            log.info("outbox relay connected", extra={"schema": self.schema})
            inflight = 1
            while True:
                if lost.is_set():
                    raise ConnectionError("broker connection lost")
                self._wake.clear()
                if inflight == 1:
                    await self._linger()
                self._hurry.clear()  # wake-ups from here on are for the next batch
                started, before = time.monotonic(), self.published_total
                full = await self._publish_batches(channel, inflight)
                if self.published_total != before:
                    self._last_batch_at = started
                await self._maybe_purge()
                if full:
                    # A backlog: keep several batches in flight (see _publish_batches).
                    inflight = self.max_inflight_batches
                    continue
                inflight = 1
                # asyncio.timeout, not wait_for: wait_for can lose a cancellation that
                # arrives as the event is set (Python 3.11), and the loop would go on.
                try:
                    async with asyncio.timeout(self.poll_interval_s):
                        await self._wake.wait()
                except TimeoutError:
                    self._hurry.set()  # a poll: events from elsewhere go at the ordinary pace
        finally:
            self._set_connected(False)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), timeout=2)

    async def _publish(self, channel: aiormq.Channel, rows: list[asyncpg.Record]) -> list[bool | BaseException]:
        """Publish ``rows`` on the confirm channel, in order, and wait for the broker's answer to
        each: True (confirmed: persisted and routed), False (no queue to route it to: returned), or
        the exception (a nack, a timeout, the connection lost).

        What aiormq's basic_publish does for one message, done for the batch under one hold of
        the channel lock: the frames of every message are marshalled together and go to the
        connection's writer as one piece, then every confirm is awaited. basic_publish per event
        cost a task, a lock, a timeout and a socket write each (the relay's CPU per event:
        RESULTS.md, seventh session). Straight to aiormq with ready-made properties: aio-pika's
        Message wrapper adds nothing here. Relies on aiormq's channel internals (its delivery tag
        count, confirmations and returned-message map), as basic_publish keeps them: aiormq is
        pinned, and the relay tests (confirms, nacks, returns, a broker lost mid-batch) hold it.
        """
        message_ids = [str(row["id"]) for row in rows]
        frames: list[Any] = []
        for row, message_id in zip(rows, message_ids, strict=True):
            body = row["payload"].encode()
            properties = Basic.Properties(content_type="application/json", message_id=message_id,
                                          delivery_mode=PERSISTENT)
            frames += [Basic.Publish(exchange=self.exchange_name, routing_key=row["routing_key"], mandatory=True),
                       ContentHeader(properties=properties, body_size=len(body)), *channel._split_body(body)]
        confirmations: list[asyncio.Future[Any]] = []
        async with channel.lock:
            first = channel.delivery_tag + 1
            for tag, message_id in enumerate(message_ids, start=first):
                confirmation = channel.create_future()
                channel.confirmations[tag] = confirmation
                channel.message_id_delivery_tag[message_id] = tag
                confirmation.add_done_callback(partial(_forget_message_id, channel, message_id, tag))
                confirmations.append(confirmation)
            channel.delivery_tag += len(rows)
            try:
                await channel.write_queue.put(ChannelFrame.marshall(frames=frames, channel_number=channel.number))
            except BaseException:
                # The broker has not seen these publishes: their sequence numbers are reused.
                channel.delivery_tag = first - 1
                for tag, confirmation in enumerate(confirmations, start=first):
                    channel.confirmations.pop(tag, None)
                    confirmation.cancel()
                raise
        _, pending = await asyncio.wait(confirmations, timeout=self.publish_timeout_s)
        for confirmation in pending:
            confirmation.cancel()  # its confirm, should it come, is ignored
        results: list[bool | BaseException] = []
        for confirmation in confirmations:
            if confirmation.cancelled():
                results.append(TimeoutError("no confirm from the broker"))
            elif (error := confirmation.exception()) is not None:
                results.append(error)
            else:
                results.append(not isinstance(confirmation.result(), DeliveredMessage))
        return results

    async def _publish_batches(self, channel: AbstractChannel, count: int) -> bool:
        """Run ``count`` batches at once; True when one came back full (more is waiting).

        A quorum queue confirms once the message is in the Raft log on disk, so one batch costs
        about one disk flush whatever its size; overlapping a few batches (each in its own
        transaction, SKIP LOCKED keeps them disjoint) multiplies throughput during a backlog.
        """
        if count == 1:
            return await self.publish_batch(channel) >= self.batch_size
        results = await asyncio.gather(*(self.publish_batch(channel) for _ in range(count)),
                                       return_exceptions=True)
        counts: list[int] = []
        for result in results:
            if isinstance(result, BaseException):
                raise result
            counts.append(result)
        return any(n >= self.batch_size for n in counts)

    async def publish_batch(self, channel: AbstractChannel) -> int:
        """Claim up to ``batch_size`` pending events, publish them on ``channel`` (publisher
        confirms on) to the events exchange, mark the confirmed ones sent."""
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                rows = await conn.fetch(
                    "SELECT id, routing_key, payload::text AS payload FROM outbox WHERE sent_at IS NULL "
                    "ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED", self.batch_size)
                if not rows:
                    return 0
                # Confirms are pipelined: every publish of the batch is in flight at once, and each
                # is answered when the broker confirmed (persisted and routed) that message.
                results = await self._publish(cast(aiormq.Channel, await channel.get_underlay_channel()), rows)
                sent = [row["id"] for row, r in zip(rows, results, strict=True) if not isinstance(r, BaseException)]
                failed = [row["id"] for row, r in zip(rows, results, strict=True) if isinstance(r, BaseException)]
                if sent:
                    await conn.execute("UPDATE outbox SET sent_at = clock_timestamp() WHERE id = ANY($1::uuid[])",
                                       sent)
                if failed:
                    await conn.execute("UPDATE outbox SET attempts = attempts + 1 WHERE id = ANY($1::uuid[])",
                                       failed)
        unroutable = sum(1 for r in results if r is False)
        self.published_total += len(sent)
        metrics.EVENTS_PUBLISHED.labels(self.schema).inc(len(sent))
        if unroutable:
            metrics.EVENTS_UNROUTABLE.labels(self.schema).inc(unroutable)
            log.warning("events had no bound queue", extra={"schema": self.schema, "count": unroutable})
        if failed:
            metrics.EVENTS_PUBLISH_FAILURES.labels(self.schema).inc(len(failed))
            first = next(r for r in results if isinstance(r, BaseException))
            raise PublishFailed(f"{len(failed)} of {len(rows)} events not confirmed: {type(first).__name__}")
        return len(sent)

    async def _maybe_purge(self) -> None:
        now = time.monotonic()
        if now - self._last_purge < self.purge_interval_s:
            return
        self._last_purge = now
        await purge_sent(self.pool, self.retention_s)

    async def _gauge_loop(self) -> None:
        """Backlog gauges are refreshed on their own schedule, so they stay true (and alarming)
        while the broker is unreachable and the publishing loop is waiting to reconnect."""
        while True:
            with contextlib.suppress(Exception):
                pending, oldest = await backlog(self.pool)
                metrics.OUTBOX_PENDING.labels(self.schema).set(pending)
                metrics.OUTBOX_OLDEST_AGE.labels(self.schema).set(oldest)
            await asyncio.sleep(self.metrics_interval_s)


OUTBOX_RELAY = web.AppKey("outbox_relay", OutboxRelay)


async def backlog(pool: asyncpg.Pool) -> tuple[int, float]:
    """Pending events and the age in seconds of the oldest one."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT count(*) AS n, COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - min(created_at)), 0) AS age "
            "FROM outbox WHERE sent_at IS NULL")
    return int(row["n"]), float(row["age"])


async def purge_sent(pool: asyncpg.Pool, retention_s: float) -> int:
    """Delete sent events older than ``retention_s``, in chunks so no single statement is long."""
    total = 0
    async with pool.acquire() as conn:
        while True:
            status = await conn.execute(
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE sent_at IS NOT NULL "
                "AND sent_at < clock_timestamp() - make_interval(secs => $1) LIMIT $2)",
                float(retention_s), _PURGE_CHUNK)
            deleted = int(status.split()[-1])
            total += deleted
            if deleted < _PURGE_CHUNK:
                return total


def relay_ctx(settings: BaseServiceSettings) -> Callable[[web.Application], AsyncIterator[None]]:
    """Run the relay as a background task of the app (after the pool context); the app wakes it
    after each write (``wake_relay_after_write``, on_response_prepare)."""
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        relay = OutboxRelay(app[DB_POOL], amqp_url=settings.amqp_url.get_secret_value(),
                            exchange=settings.events_exchange, schema=settings.db_schema,
                            batch_size=settings.relay_batch_size, poll_interval_s=settings.relay_poll_interval_s,
                            retention_s=settings.outbox_retention_s,
                            publish_timeout_s=settings.relay_publish_timeout_s,
                            linger_s=settings.relay_linger_ms / 1000,
                            lazy_linger_s=settings.relay_lazy_linger_ms / 1000)
        app[OUTBOX_RELAY] = relay
        task = asyncio.create_task(relay.run(), name="outbox-relay") if settings.relay_enabled else None
        yield
        await cancel_and_wait(task)
    return ctx


# Set on a write whose events no service acts on soon (a sign-in's, which only the audit log
# records): its wake-up is lazy, and a steady flow of such writes is carried in batches spaced by
# RELAY_LAZY_LINGER_MS instead of RELAY_LINGER_MS (OutboxRelay.wake).
LAZY_EVENTS = web.RequestKey("lazy_events", bool)


async def wake_relay_after_write(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare`` of an app that runs the relay: the answer of a write is prepared
    once its transaction committed, so the events it added go now, not at the next poll. A write
    that added none costs the relay one look at the outbox."""
    if request.method in READ_METHODS or response.status >= 400:
        return
    relay = request.config_dict.get(OUTBOX_RELAY)
    if relay is not None:
        relay.wake(lazy=request.get(LAZY_EVENTS, False))
