"""Consumers: a durable quorum queue per consumer group, bound by routing patterns.

A message is acked only after the handler's transaction committed; the same transaction
records the event id in the inbox, so a redelivered event has no second effect. A failed
handler rolls back and the message is retried later through the group's retry queue (a
per-message TTL dead-letters it back), ``max_retries`` times with doubling delays; after that,
or at once for a poison event (not an envelope, or ``MalformedEvent`` from the handler: the
policy is ``shared.messaging.poison``), it is parked in ``<group>.dlq``.

Parking publishes a copy to the DLQ, confirmed by the broker, and only then acks the original
(rather than a nack to a dead-letter exchange): a crash at any point leaves at least one copy,
and the copy carries why it was parked (``x-dead-letter-reason``, ``x-last-error``) and the
event type it was published with. See ``broker`` for the topology.

A committed batch is acked with one frame (``basic.ack`` with ``multiple``, up to its newest
delivery) when every older delivery of the channel still open belongs to it; otherwise each of
its messages is acked on its own. A delivery counts as open from its arrival until its own ack,
nack or park was sent, so a multiple ack never covers a message that is still being handled.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal

import aio_pika
import asyncpg
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, HeadersType
from aiohttp import web
from aiormq.abc import DeliveredMessage
from pydantic import ValidationError

from ..config import BaseServiceSettings
from ..db import DB_POOL
from ..tasks import cancel_and_wait
from . import metrics
from .broker import connect, declare_events_exchange, declare_group_queues, dlq_name, retry_queue_name
from .envelope import Event
from .poison import MALFORMED, RETRIES_EXHAUSTED, UNPARSEABLE, MalformedEvent, describe_validation_error
from .relay import OUTBOX_RELAY

log = logging.getLogger(__name__)

Handler = Callable[[asyncpg.Connection, Event], Awaitable[None]]
# Applies the new events of a batch, in delivery order, in the batch's transaction (instead of
# the handler once per event): for a handler that writes many events in one statement.
BatchHandler = Callable[[asyncpg.Connection, list[Event]], Awaitable[None]]

ATTEMPT_HEADER = "x-attempt"             # delayed retries already made for this message
ROUTING_KEY_HEADER = "x-routing-key"     # the event type it was published with
_DROPPED_HEADERS = ("x-death", "x-first-death-exchange", "x-first-death-queue", "x-first-death-reason",
                    "x-last-death-exchange", "x-last-death-queue", "x-last-death-reason")

# Failures of the infrastructure rather than of the event: retried without spending the
# message's retry budget, so an outage of PostgreSQL never sends good events to the DLQ.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError, asyncio.TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError, asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError)


class RepublishFailed(Exception):
    pass


# What became of an event handed to a batch (EventConsumer._apply_in_batch).
_ACKED, _APPLIED, _FAILED = "acked", "applied", "failed"


class EventConsumer:
    def __init__(self, pool: asyncpg.Pool, *, amqp_url: str, exchange: str, group: str,
                 bindings: list[str], handler: Handler, prefetch: int = 32, max_retries: int = 5,
                 retry_delay_ms: int = 1000, retry_max_delay_ms: int = 60_000,
                 inbox_retention_s: float = 30 * 24 * 3600, max_batch: int = 1, batch_linger_s: float = 0.0,
                 batch_handler: BatchHandler | None = None):
        self.pool, self.amqp_url, self.exchange_name = pool, amqp_url, exchange
        self.group, self.bindings, self.handler = group, bindings, handler
        self.prefetch, self.max_retries, self.retry_delay_ms = prefetch, max_retries, retry_delay_ms
        self.retry_max_delay_ms, self.inbox_retention_s = retry_max_delay_ms, inbox_retention_s
        self.connected = False
        self.connected_since: float | None = None
        self.processed_total = 0
        self._stopping = False
        self._queue: AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._last_inbox_purge = 0.0
        self.max_batch = max(1, max_batch)
        # A batch stays unacked until it commits. With room for two batches unacked, the next one
        # is delivered while one commits; a prefetch below max_batch would cap every batch at it.
        if self.max_batch > 1:
            self.prefetch = max(prefetch, 2 * self.max_batch)
        self.batch_linger_s = batch_linger_s
        self.batch_handler = batch_handler
        self._pending: list[tuple[Event, AbstractIncomingMessage, asyncio.Future[str]]] = []
        self._drainer: asyncio.Task[None] | None = None
        # Delivery tags of the current channel not yet acked, nacked or parked (see the module
        # docstring): what a batch's single ack may cover.
        self._open_channel: object | None = None
        self._open: set[int] = set()
        # Called after a transaction that applied events committed: the app's relay is woken, so
        # events a handler added to the outbox go now, not at its next poll (ConsumerContext).
        self.on_applied: Callable[[], None] | None = None

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        delay = 0.2
        while not self._stopping:
            try:
                await self._run_connected()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._stopping:
                    return
                if self.connected_since is not None:  # it had been working: start the backoff over
                    delay, self.connected_since = 0.2, None
                log.warning("consumer interrupted, retrying",
                            extra={"consumer": self.group, "error": type(exc).__name__})
                await asyncio.sleep(delay + random.uniform(0, delay / 2))
                delay = min(delay * 2, 5.0)

    async def _run_connected(self) -> None:
        connection = await connect(self.amqp_url)
        try:
            closed = asyncio.get_running_loop().create_future()

            def on_close(*_args: object) -> None:
                self.connected = False
                if not closed.done():
                    closed.set_result(None)
            connection.close_callbacks.add(on_close)
            channel = await connection.channel(publisher_confirms=True)
            channel.close_callbacks.add(on_close)
            await channel.set_qos(prefetch_count=self.prefetch)
            exchange = await declare_events_exchange(channel, self.exchange_name)
            queue, _, _ = await declare_group_queues(channel, self.group)
            for pattern in self.bindings:
                await queue.bind(exchange, routing_key=pattern)
            self._channel = channel
            self._queue = queue
            self._consumer_tag = await queue.consume(self._on_message)
            self.connected, self.connected_since = True, time.monotonic()
            log.info("consumer connected", extra={"consumer": self.group})
            while not closed.done():
                await self._purge_inbox()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(closed), timeout=600)
            raise ConnectionError("broker connection closed")
        finally:
            self.connected = False
            self._queue = self._consumer_tag = None
            # Deliveries of a lost channel come again: drop their unfinished work with them.
            if self._drainer is not None and not self._drainer.done():
                self._drainer.cancel()
            for _, _, done in self._pending:
                done.cancel()
            self._pending.clear()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), timeout=2)

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop taking deliveries and give in-flight handlers ``timeout`` seconds to finish;
        whatever is still unacked afterwards is redelivered by the broker."""
        self._stopping = True
        if self._queue is not None and self._consumer_tag is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._queue.cancel(self._consumer_tag), timeout=2)
        if self._inflight:
            await asyncio.wait(list(self._inflight), timeout=timeout)

    # ------------------------------------------------------------------ deliveries

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        if message.channel is not self._open_channel:  # a new channel numbers its deliveries anew
            self._open_channel, self._open = message.channel, set()
        if message.delivery_tag is not None:
            self._open.add(message.delivery_tag)
        # aio-pika runs each delivery callback in a task of its own.
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        try:
            await self._handle(message)
        finally:
            if task is not None:
                self._inflight.discard(task)

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        try:
            event = Event.model_validate_json(message.body)
        except ValidationError as exc:
            await self._park(message, reason=UNPARSEABLE, error=describe_validation_error(exc))
            return
        except ValueError:  # pragma: no cover - pydantic reports bad JSON as a ValidationError
            await self._park(message, reason=UNPARSEABLE, error="not JSON")
            return
        attempt = _attempt_of(message)
        # A retried message failed before: it goes alone, so it cannot fail a batch again.
        if self.max_batch > 1 and attempt == 0:
            outcome = await self._apply_in_batch(event, message)
            if outcome == _APPLIED:
                await self._ack(message)
            if outcome != _FAILED:  # applied, and acked (with its batch, or just above)
                return
        try:
            started = time.perf_counter()
            await self.process(event)
            metrics.EVENT_HANDLER_SECONDS.labels(self.group).observe(time.perf_counter() - started)
        except asyncio.CancelledError:
            raise  # not acked: the broker redelivers it, and the rolled-back work is done again
        except MalformedEvent as exc:
            await self._park(message, reason=MALFORMED, error=str(exc)[:500], event=event)
            return
        except Exception as exc:
            transient = isinstance(exc, TRANSIENT_ERRORS)
            log.warning("handler failed", exc_info=not transient,
                        extra={"consumer": self.group, "event_id": str(event.id), "event_type": event.type,
                               "attempt": attempt, "error": type(exc).__name__})
            if transient:
                await self._retry(message, attempt, exc)
            elif attempt >= self.max_retries:
                await self._park(message, reason=RETRIES_EXHAUSTED, error=_describe(exc), event=event,
                                 logged_error=type(exc).__name__)
            else:
                await self._retry(message, attempt + 1, exc)
            return
        await self._ack(message)

    async def _ack(self, message: AbstractIncomingMessage) -> None:
        await message.ack()
        self._settled(message)

    def _settled(self, message: AbstractIncomingMessage) -> None:
        """``message``'s own ack or nack was sent: a later multiple ack may go past it."""
        if message.channel is self._open_channel and message.delivery_tag is not None:
            self._open.discard(message.delivery_tag)

    async def _ack_batch(self, messages: list[AbstractIncomingMessage]) -> bool:
        """Ack a committed batch with one frame when nothing older on the channel is still open;
        False (nothing sent) when its messages must be acked one by one."""
        if any(m.channel is not self._open_channel or m.delivery_tag is None for m in messages):
            return False
        tags = {m.delivery_tag for m in messages if m.delivery_tag is not None}
        top = max(tags)
        if any(tag <= top and tag not in tags for tag in self._open):
            return False
        await next(m for m in messages if m.delivery_tag == top).ack(multiple=True)
        self._open -= tags
        return True

    async def process(self, event: Event) -> bool:
        """Apply ``event`` once: returns False when this group had already applied it."""
        async with self.pool.acquire() as conn, conn.transaction():
            fresh = await conn.fetchval(
                "INSERT INTO inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING true",
                self.group, event.id)
            if not fresh:
                metrics.EVENTS_DUPLICATES.labels(self.group).inc()
                return False
            await self.handler(conn, event)
        self.processed_total += 1
        metrics.EVENTS_PROCESSED.labels(self.group).inc()
        if self.on_applied is not None:
            self.on_applied()
        return True

    # Batching (max_batch > 1): deliveries that arrive while a transaction is running are applied
    # together in the next one: one BEGIN/COMMIT and one inbox statement for the lot instead of
    # per event; the first delivery after a quiet spell waits batch_linger_s for its burst. When a
    # batch fails, each of its events takes the one-by-one path, so a poison event is retried and
    # parked on its own.

    async def _apply_in_batch(self, event: Event, message: AbstractIncomingMessage) -> str:
        """_ACKED once ``event`` was applied (or found applied) in a committed batch acked as one;
        _APPLIED when it was, but its message is still to be acked; _FAILED when the batch failed."""
        done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._pending.append((event, message, done))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain(), name=f"consumer-{self.group}-batches")
        return await done

    async def _drain(self) -> None:
        # The first delivery after a quiet spell waits batch_linger_s for the ones right behind
        # it (a relay publishes its batch as one burst), so they share one transaction.
        if self.batch_linger_s > 0 and len(self._pending) < self.max_batch:
            await asyncio.sleep(self.batch_linger_s)
        while self._pending:
            batch, self._pending = self._pending[:self.max_batch], self._pending[self.max_batch:]
            outcome = _FAILED
            try:
                try:
                    await self.process_batch([event for event, _, _ in batch])
                    outcome = _APPLIED
                except Exception as exc:
                    log.info("batch failed, applying its events one by one",
                             extra={"consumer": self.group, "size": len(batch), "error": type(exc).__name__})
                try:
                    if outcome == _APPLIED and await self._ack_batch([message for _, message, _ in batch]):
                        outcome = _ACKED
                except Exception as exc:  # the channel is going: each message's own ack will say so
                    log.info("batch ack failed", extra={"consumer": self.group, "error": type(exc).__name__})
            finally:
                # Every message of the batch hears what became of it, even when the drainer is
                # cancelled (a message's task must not wait on its batch for ever).
                for _, _, done in batch:
                    if not done.done():
                        done.set_result(outcome)

    async def process_batch(self, events: list[Event]) -> int:
        """Apply ``events`` in one transaction, each once; returns how many were new."""
        started = time.perf_counter()
        ids = sorted({event.id for event in events})  # one lock order for concurrent batches
        async with self.pool.acquire() as conn, conn.transaction():
            fresh = {row["event_id"] for row in await conn.fetch(
                "INSERT INTO inbox (consumer, event_id) SELECT $1, unnest($2::uuid[]) "
                "ON CONFLICT DO NOTHING RETURNING event_id", self.group, ids)}
            new = []
            for event in events:
                if event.id in fresh:
                    fresh.discard(event.id)
                    new.append(event)
            if self.batch_handler is not None:
                if new:
                    await self.batch_handler(conn, new)
            else:
                for event in new:
                    await self.handler(conn, event)
            applied = len(new)
        self.processed_total += applied
        metrics.EVENTS_PROCESSED.labels(self.group).inc(applied)
        if applied and self.on_applied is not None:
            self.on_applied()
        if len(events) > applied:
            metrics.EVENTS_DUPLICATES.labels(self.group).inc(len(events) - applied)
        metrics.EVENT_HANDLER_SECONDS.labels(self.group).observe((time.perf_counter() - started) / len(events))
        return applied

    def retry_delay_for(self, attempt: int) -> int:
        """Delay in ms before retry number ``attempt`` (1-based): doubling, capped."""
        return int(min(self.retry_delay_ms * 2 ** max(attempt - 1, 0), self.retry_max_delay_ms))

    async def _retry(self, message: AbstractIncomingMessage, attempt: int, exc: BaseException) -> None:
        delay_ms = self.retry_delay_for(max(attempt, 1))
        ok = await self._forward(message, retry_queue_name(self.group), headers={
            ATTEMPT_HEADER: attempt, "x-last-error": _describe(exc)}, expiration_ms=delay_ms)
        if ok:
            metrics.EVENTS_RETRIED.labels(self.group).inc()

    async def _park(self, message: AbstractIncomingMessage, *, reason: str, error: str,
                    event: Event | None = None, logged_error: str | None = None) -> None:
        """Dead-letter ``message`` (shared.messaging.poison): the one place that does it and
        logs it, once, at ERROR, with the event's id and type (the message's, for a body that is
        not an envelope) and never the payload. ``error`` goes with the copy; ``logged_error``,
        when given, is what the log says instead (an exception's text may quote values)."""
        ok = await self._forward(message, dlq_name(self.group), headers={
            "x-dead-letter-reason": reason, "x-last-error": error, "x-consumer-group": self.group,
            "x-dead-lettered-at": datetime.now(UTC).isoformat().replace("+00:00", "Z")})
        if ok:
            metrics.EVENTS_DEAD_LETTERED.labels(self.group, reason).inc()
            log.error("event dead-lettered", extra={
                "consumer": self.group, "reason": reason, "error": error if logged_error is None else logged_error,
                "event_id": str(event.id) if event else message.message_id,
                "event_type": event.type if event else _routing_key_of(message)})

    async def _forward(self, message: AbstractIncomingMessage, queue: str, *, headers: HeadersType,
                       expiration_ms: int | None = None) -> bool:
        """Put a copy in one of the group's own queues, then ack the original. When the copy
        cannot be confirmed, the original goes back to the queue instead (after a pause)."""
        try:
            copy = copy_message(message, headers, expiration_ms=expiration_ms)
            result = await self._channel.default_exchange.publish(copy, routing_key=queue, timeout=10)
            if isinstance(result, DeliveredMessage):
                raise RepublishFailed(f"queue {queue} does not exist")
            await self._ack(message)
            return True
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("could not forward message, requeueing it", extra={
                "consumer": self.group, "queue": queue, "error": type(exc).__name__})
            await asyncio.sleep(min(self.retry_delay_ms, 5000) / 1000)
            with contextlib.suppress(Exception):
                await message.nack(requeue=True)
                self._settled(message)
            return False

    async def _purge_inbox(self) -> None:
        """Forget applied event ids after the retention (at most once an hour per process)."""
        now = time.monotonic()
        if now - self._last_inbox_purge < 3600:
            return
        self._last_inbox_purge = now
        with contextlib.suppress(Exception):
            async with self.pool.acquire() as conn:
                await conn.execute(
                    "DELETE FROM inbox WHERE consumer = $1 AND processed_at < now() - make_interval(secs => $2)",
                    self.group, float(self.inbox_retention_s))


def _attempt_of(message: AbstractIncomingMessage) -> int:
    value = (message.headers or {}).get(ATTEMPT_HEADER, 0)
    if not isinstance(value, int | float | str | bytes | bytearray | Decimal):
        return 0
    try:
        return max(int(value), 0)
    except ValueError:
        return 0


def _routing_key_of(message: AbstractIncomingMessage) -> str | None:
    original = (message.headers or {}).get(ROUTING_KEY_HEADER)
    if isinstance(original, bytes):
        original = original.decode(errors="replace")
    return original if isinstance(original, str) else message.routing_key


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text[:500]


def copy_message(message: AbstractIncomingMessage, headers: HeadersType, *, expiration_ms: int | None = None,
                 drop: tuple[str, ...] = ()) -> aio_pika.Message:
    """A persistent copy of ``message`` with ``headers`` merged in; remembers the original
    routing key (the event type) since the copy travels with another one."""
    merged = {k: v for k, v in (message.headers or {}).items() if k not in _DROPPED_HEADERS and k not in drop}
    merged.setdefault(ROUTING_KEY_HEADER, message.routing_key)
    merged.update(headers)
    return aio_pika.Message(
        body=message.body, headers=merged, content_type=message.content_type or "application/json",
        message_id=message.message_id, delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        expiration=None if expiration_ms is None else expiration_ms / 1000)


class ConsumerContext:
    """Cleanup context running an EventConsumer as a background task of the app (after the
    pool context). ``consumer_group`` and ``consumer_bindings`` are read by `declare-queues`
    (shared.messaging.topology) to declare the group before any producer publishes."""

    def __init__(self, settings: BaseServiceSettings, *, group: str, bindings: list[str], handler: Handler,
                 key: web.AppKey[EventConsumer] | None = None, max_batch: int = 1,
                 batch_handler: BatchHandler | None = None) -> None:
        self.settings, self.handler, self.key, self.max_batch = settings, handler, key, max_batch
        self.batch_handler = batch_handler
        self.consumer_group = group
        self.consumer_bindings = list(bindings)

    async def __call__(self, app: web.Application) -> AsyncIterator[None]:
        settings, group, bindings = self.settings, self.consumer_group, self.consumer_bindings
        handler, key, max_batch = self.handler, self.key, self.max_batch
        consumer = EventConsumer(app[DB_POOL], amqp_url=settings.amqp_url.get_secret_value(),
                                 exchange=settings.events_exchange, group=group, bindings=bindings,
                                 handler=handler, prefetch=settings.consumer_prefetch,
                                 max_retries=settings.consumer_max_retries,
                                 retry_delay_ms=settings.consumer_retry_delay_ms,
                                 retry_max_delay_ms=settings.consumer_retry_max_delay_ms,
                                 inbox_retention_s=settings.inbox_retention_s, max_batch=max_batch,
                                 batch_linger_s=settings.consumer_batch_linger_ms / 1000,
                                 batch_handler=self.batch_handler)
        if key is not None:
            app[key] = consumer
        relay = app.get(OUTBOX_RELAY)
        if relay is not None:  # what the handlers add to the outbox goes at once
            consumer.on_applied = relay.wake
        task = asyncio.create_task(consumer.run(), name=f"consumer-{group}")
        yield
        await consumer.stop(settings.shutdown_timeout_s)
        await cancel_and_wait(task)


def consumer_ctx(settings: BaseServiceSettings, *, group: str, bindings: list[str], handler: Handler,
                 key: web.AppKey[EventConsumer] | None = None, max_batch: int = 1,
                 batch_handler: BatchHandler | None = None) -> ConsumerContext:
    """Run an EventConsumer as a background task of the app (after the pool context)."""
    return ConsumerContext(settings, group=group, bindings=bindings, handler=handler, key=key, max_batch=max_batch,
                           batch_handler=batch_handler)


def consumer_ready_check(
    key: web.AppKey[EventConsumer],
) -> Callable[[web.Application], Awaitable[dict[str, str | bool | int]]]:
    """A readiness check that fails while the consumer under ``key`` has no broker connection."""
    async def check(app: web.Application) -> dict[str, str | bool | int]:
        consumer = app[key]
        if not consumer.connected:
            raise ConsumerDisconnected(consumer.group)
        return {"group": consumer.group, "connected": True, "processed": consumer.processed_total}
    return check


class ConsumerDisconnected(Exception):
    pass
