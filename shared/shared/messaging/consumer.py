"""Consumers: a durable quorum queue per consumer group, bound by routing patterns.

A message is acked only after the handler's transaction committed; the same transaction
records the event id in the inbox, so a redelivered event has no second effect.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Awaitable, Callable

import aio_pika
import asyncpg
from aio_pika.abc import AbstractIncomingMessage
from aiohttp import web
from pydantic import ValidationError

from ..config import BaseServiceSettings
from ..db import DB_POOL
from .broker import connect, declare_events_exchange
from .envelope import Event

log = logging.getLogger(__name__)

Handler = Callable[[asyncpg.Connection, Event], Awaitable[None]]


class EventConsumer:
    def __init__(self, pool: asyncpg.Pool, *, amqp_url: str, exchange: str, group: str,
                 bindings: list[str], handler: Handler, prefetch: int = 32, max_retries: int = 5,
                 retry_delay_ms: int = 1000):
        self.pool, self.amqp_url, self.exchange_name = pool, amqp_url, exchange
        self.group, self.bindings, self.handler = group, bindings, handler
        self.prefetch, self.max_retries, self.retry_delay_ms = prefetch, max_retries, retry_delay_ms
        self.connected = False
        self.processed_total = 0

    async def run(self) -> None:
        delay = 0.2
        while True:
            try:
                await self._run_connected()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.connected = False
                log.warning("consumer interrupted, retrying",
                            extra={"consumer": self.group, "error": type(exc).__name__})
                await asyncio.sleep(delay + random.uniform(0, delay / 2))
                delay = min(delay * 2, 10.0)

    async def _run_connected(self) -> None:
        connection = await connect(self.amqp_url)
        try:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=self.prefetch)
            exchange = await declare_events_exchange(channel, self.exchange_name)
            queue = await channel.declare_queue(self.group, durable=True,
                                                arguments={"x-queue-type": "quorum"})
            for pattern in self.bindings:
                await queue.bind(exchange, routing_key=pattern)
            self.connected = True
            closed = asyncio.get_running_loop().create_future()
            connection.close_callbacks.add(lambda *_: closed.done() or closed.set_result(None))
            await queue.consume(self._on_message)
            await closed
            raise ConnectionError("broker connection closed")
        finally:
            self.connected = False
            with contextlib.suppress(Exception):
                await connection.close()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            event = Event.model_validate(json.loads(message.body))
        except (ValueError, ValidationError):
            log.error("unparseable message rejected", extra={"consumer": self.group, "message_id": message.message_id})
            await message.reject(requeue=False)
            return
        try:
            await self.process(event)
        except Exception:
            log.exception("handler failed", extra={"consumer": self.group, "event_id": str(event.id),
                                                   "event_type": event.type})
            await asyncio.sleep(self.retry_delay_ms / 1000)
            await message.nack(requeue=True)
            return
        await message.ack()

    async def process(self, event: Event) -> bool:
        """Apply ``event`` once: returns False when this group had already applied it."""
        async with self.pool.acquire() as conn, conn.transaction():
            fresh = await conn.fetchval(
                "INSERT INTO inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING true",
                self.group, event.id)
            if not fresh:
                return False
            await self.handler(conn, event)
        self.processed_total += 1
        return True


def consumer_ctx(settings: BaseServiceSettings, *, group: str, bindings: list[str], handler: Handler,
                 key: web.AppKey | None = None):
    """Run an EventConsumer as a background task of the app (after the pool context)."""
    async def ctx(app: web.Application):
        consumer = EventConsumer(app[DB_POOL], amqp_url=settings.amqp_url.get_secret_value(),
                                 exchange=settings.events_exchange, group=group, bindings=bindings,
                                 handler=handler, prefetch=settings.consumer_prefetch,
                                 max_retries=settings.consumer_max_retries,
                                 retry_delay_ms=settings.consumer_retry_delay_ms)
        if key is not None:
            app[key] = consumer
        task = asyncio.create_task(consumer.run(), name=f"consumer-{group}")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return ctx
