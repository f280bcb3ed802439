"""RabbitMQ topology and connection helpers shared by the relay, the consumers and the DLQ tool.

Per consumer group ``G`` (all durable quorum queues):

* ``G``       bound to the events exchange by the group's routing patterns; the consumer reads it.
* ``G.retry`` no consumer; a failed message is republished here with a per-message TTL and
              dead-lettered back to ``G`` (default exchange, routing key ``G``) when it expires.
              At-least-once dead-lettering (with ``reject-publish`` overflow, which it requires)
              makes that hop safe: the broker keeps the message until ``G`` confirmed it.
* ``G.dlq``   no consumer; poison and unparseable messages are parked here for an operator
              (``python -m shared.messaging.dlq``).

Retry and dead-letter copies travel through the default exchange straight to the group's own
queues, so other groups never see a second copy.
"""
from __future__ import annotations

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue

QUORUM = {"x-queue-type": "quorum"}


def retry_queue_name(group: str) -> str:
    return f"{group}.retry"


def dlq_name(group: str) -> str:
    return f"{group}.dlq"


async def connect(url: str, *, timeout: float = 5.0) -> aio_pika.abc.AbstractConnection:
    return await aio_pika.connect(url, timeout=timeout)


async def declare_events_exchange(channel: AbstractChannel, name: str) -> AbstractExchange:
    return await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)


async def declare_group_queues(
    channel: AbstractChannel, group: str,
) -> tuple[AbstractQueue, AbstractQueue, AbstractQueue]:
    """Declare (idempotently) the group's main, retry and dead-letter queues."""
    main = await channel.declare_queue(group, durable=True, arguments=dict(QUORUM))
    retry = await channel.declare_queue(retry_queue_name(group), durable=True, arguments={
        **QUORUM,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": group,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    })
    dlq = await channel.declare_queue(dlq_name(group), durable=True, arguments=dict(QUORUM))
    return main, retry, dlq


async def delete_group_queues(channel: AbstractChannel, group: str) -> None:
    """Remove a group's queues (tests and benchmarks clean up after themselves)."""
    for name in (group, retry_queue_name(group), dlq_name(group)):
        await channel.queue_delete(name)
