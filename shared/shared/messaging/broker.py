"""RabbitMQ connection helpers shared by the relay and the consumers."""
from __future__ import annotations

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange


async def connect(url: str, *, timeout: float = 5.0) -> aio_pika.abc.AbstractConnection:
    return await aio_pika.connect(url, timeout=timeout)


async def declare_events_exchange(channel: AbstractChannel, name: str) -> AbstractExchange:
    return await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)
