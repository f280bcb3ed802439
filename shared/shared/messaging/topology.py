"""Broker topology as a deploy step, like migrations: the events exchange and every consumer
group's queues and bindings are declared before any producer publishes.

A topic exchange drops a message that no queue is bound for, so an event published before a
group's queue first exists would never reach that group. Declaring the queues at deploy time
(``python -m <package> declare-queues``, run by ``make run``, compose and the Kubernetes jobs)
closes that window; the consumers declare the same things again at start-up (idempotent).
"""
from __future__ import annotations

from aiohttp import web

from .broker import connect, declare_events_exchange, declare_group_queues
from .consumer import ConsumerContext


def app_consumer_groups(app: web.Application) -> list[tuple[str, list[str]]]:
    """The (group, bindings) of every consumer the app would run."""
    return [(ctx.consumer_group, ctx.consumer_bindings) for ctx in app.cleanup_ctx
            if isinstance(ctx, ConsumerContext)]


async def declare_topology(amqp_url: str, exchange: str, groups: list[tuple[str, list[str]]]) -> None:
    connection = await connect(amqp_url)
    try:
        channel = await connection.channel()
        ex = await declare_events_exchange(channel, exchange)
        for group, bindings in groups:
            main, _retry, _dlq = await declare_group_queues(channel, group)
            for pattern in bindings:
                await main.bind(ex, routing_key=pattern)
    finally:
        await connection.close()
