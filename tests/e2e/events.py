"""A consumer bound to the stack's events exchange, recording what arrives."""
from __future__ import annotations

import asyncio
import json
import time
import uuid

import aio_pika

from shared.testing import AMQP_URL


class EventTap:
    def __init__(self, exchange: str):
        self.exchange = exchange
        self.messages: list[tuple[aio_pika.abc.AbstractIncomingMessage, dict]] = []

    async def start(self) -> EventTap:
        self.connection = await aio_pika.connect(AMQP_URL)
        channel = await self.connection.channel()
        exchange = await channel.declare_exchange(self.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        self.queue = await channel.declare_queue(f"e2e-tap-{uuid.uuid4().hex[:8]}", exclusive=True, auto_delete=True)
        await self.queue.bind(exchange, routing_key="#")

        async def on_message(message):
            async with message.process():
                self.messages.append((message, json.loads(message.body)))
        await self.queue.consume(on_message)
        return self

    async def wait_for(self, predicate, timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for _, body in self.messages:
                if predicate(body):
                    return body
            await asyncio.sleep(0.05)
        raise AssertionError(f"no matching event within {timeout}s; saw {[b.get('type') for _, b in self.messages]}")

    def invalid_events(self, validator) -> list[str]:
        """Every recorded event that breaks the AsyncAPI document (``shared.messaging.asyncapi.
        EventValidator``), an unknown type included, or whose routing key or message id is not the
        event's own."""
        problems = []
        for message, event in list(self.messages):
            errors = validator.errors(event)
            if message.routing_key != event.get("type"):
                errors.append(f"routing key {message.routing_key!r} is not the type")
            if message.message_id != event.get("id"):
                errors.append("message_id is not the event id")
            problems += [f"{event.get('type')} {event.get('id')}: {e}" for e in errors]
        return problems

    def message_of(self, event_id: str):
        return next(m for m, b in self.messages if b["id"] == event_id)

    async def close(self) -> None:
        await self.connection.close()
