"""The outbox relay: publishes committed events to the ``events`` exchange.

Rows are claimed with ``FOR UPDATE SKIP LOCKED`` so relays in several replicas share the
work, published as persistent messages, and marked sent only after the broker confirmed
them. A failure anywhere rolls the claim back and the rows are published again later: at
least once, never lost.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time

import aio_pika
import asyncpg
from aiohttp import web

from ..config import BaseServiceSettings
from ..db import DB_POOL
from .broker import connect, declare_events_exchange

log = logging.getLogger(__name__)


class OutboxRelay:
    def __init__(self, pool: asyncpg.Pool, *, amqp_url: str, exchange: str, schema: str,
                 batch_size: int = 200, poll_interval_s: float = 1.0, retention_s: int = 86400):
        self.pool, self.amqp_url, self.exchange_name, self.schema = pool, amqp_url, exchange, schema
        self.batch_size, self.poll_interval_s, self.retention_s = batch_size, poll_interval_s, retention_s
        self.broker_connected = False
        self.published_total = 0
        self._wake = asyncio.Event()
        self._last_purge = 0.0

    def _notified(self, *_args) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Run until cancelled; reconnects to PostgreSQL and RabbitMQ with backoff."""
        delay = 0.2
        while True:
            try:
                await self._run_connected()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.broker_connected = False
                log.warning("outbox relay interrupted, retrying", extra={"error": type(exc).__name__,
                                                                          "retry_in_s": round(delay, 2)})
                await asyncio.sleep(delay + random.uniform(0, delay / 2))
                delay = min(delay * 2, 10.0)
            else:
                delay = 0.2

    async def _run_connected(self) -> None:
        listener = await self.pool.acquire()
        channel_name = f"{self.schema}_outbox"
        try:
            await listener.add_listener(channel_name, self._notified)
            connection = await connect(self.amqp_url)
            try:
                channel = await connection.channel(publisher_confirms=True)
                exchange = await declare_events_exchange(channel, self.exchange_name)
                self.broker_connected = True
                log.info("outbox relay connected", extra={"schema": self.schema})
                while True:
                    self._wake.clear()
                    sent = await self.publish_batch(exchange)
                    await self._maybe_purge()
                    if sent >= self.batch_size:
                        continue
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval_s)
            finally:
                self.broker_connected = False
                with contextlib.suppress(Exception):
                    await connection.close()
        finally:
            with contextlib.suppress(Exception):
                await listener.remove_listener(channel_name, self._notified)
            await self.pool.release(listener)

    async def publish_batch(self, exchange) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT id, routing_key, payload::text AS payload FROM outbox WHERE sent_at IS NULL "
                "ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED", self.batch_size)
            if not rows:
                return 0
            # Publish the batch concurrently; each publish returns once the broker confirmed it.
            await asyncio.gather(*(
                exchange.publish(
                    aio_pika.Message(body=row["payload"].encode(), content_type="application/json",
                                     message_id=str(row["id"]),
                                     delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                    routing_key=row["routing_key"], mandatory=False)
                for row in rows))
            await conn.execute("UPDATE outbox SET sent_at = clock_timestamp() WHERE id = ANY($1::uuid[])",
                               [row["id"] for row in rows])
        self.published_total += len(rows)
        return len(rows)

    async def _maybe_purge(self) -> None:
        now = time.monotonic()
        if now - self._last_purge < 60:
            return
        self._last_purge = now
        async with self.pool.acquire() as conn:
            await conn.execute(
                "DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < now() - make_interval(secs => $1)",
                float(self.retention_s))


OUTBOX_RELAY = web.AppKey("outbox_relay", OutboxRelay)


async def backlog(pool: asyncpg.Pool) -> tuple[int, float]:
    """Pending events and the age in seconds of the oldest one."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT count(*) AS n, COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0) AS age "
            "FROM outbox WHERE sent_at IS NULL")
    return int(row["n"]), float(row["age"])


def relay_ctx(settings: BaseServiceSettings):
    """Run the relay as a background task of the app (after the pool context)."""
    async def ctx(app: web.Application):
        relay = OutboxRelay(app[DB_POOL], amqp_url=settings.amqp_url.get_secret_value(),
                            exchange=settings.events_exchange, schema=settings.db_schema,
                            batch_size=settings.relay_batch_size, poll_interval_s=settings.relay_poll_interval_s,
                            retention_s=settings.outbox_retention_s)
        app[OUTBOX_RELAY] = relay
        task = asyncio.create_task(relay.run(), name="outbox-relay") if settings.relay_enabled else None
        yield
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return ctx
