"""Operate a consumer group's dead-letter queue.

    python -m shared.messaging.dlq list    --group G [--limit N] [--json]
    python -m shared.messaging.dlq requeue --group G [--limit N]

``list`` shows parked messages without removing them (each is fetched unacked, then handed
back when the channel closes). ``requeue`` moves messages, oldest first, back to the group's
own queue with a fresh retry budget (the copy is confirmed before the parked message is
acked), so only that group sees them again. Reads ``AMQP_URL`` and ``EVENTS_EXCHANGE``.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict, dataclass
from decimal import Decimal

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractMessage, AbstractQueue
from aiormq.abc import DeliveredMessage

from ..config import BaseServiceSettings
from .broker import connect, dlq_name
from .consumer import ATTEMPT_HEADER, ROUTING_KEY_HEADER, copy_message


@dataclass
class DeadLetter:
    message_id: str | None
    type: str | None
    reason: str | None
    attempts: int | None
    dead_lettered_at: str | None
    error: str | None


def _text(value: object) -> str | None:
    if value is None:
        return None
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _int(value: object) -> int | None:
    """A numeric header's value; None when absent or not a number."""
    if not isinstance(value, int | float | str | bytes | bytearray | Decimal):
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _message_count(queue: AbstractQueue) -> int:
    # A declare always answers with the count; the AMQP model types it optional.
    return queue.declaration_result.message_count or 0


def describe(message: AbstractMessage) -> DeadLetter:
    headers = message.headers or {}
    return DeadLetter(message_id=message.message_id, type=_text(headers.get(ROUTING_KEY_HEADER)),
                      reason=_text(headers.get("x-dead-letter-reason")),
                      attempts=_int(headers.get(ATTEMPT_HEADER)),
                      dead_lettered_at=_text(headers.get("x-dead-lettered-at")),
                      error=_text(headers.get("x-last-error")))


class NoSuchGroup(Exception):
    pass


async def _dlq(channel: AbstractChannel, group: str) -> AbstractQueue:
    try:
        return await channel.declare_queue(dlq_name(group), passive=True)
    except aiormq.exceptions.ChannelNotFoundEntity:
        raise NoSuchGroup(group) from None


async def list_dead_letters(amqp_url: str, group: str, *, limit: int = 100) -> tuple[int, list[DeadLetter]]:
    """The number of parked messages and the first ``limit`` of them (left in place)."""
    connection = await connect(amqp_url)
    try:
        channel = await connection.channel()
        queue = await _dlq(channel, group)
        total = _message_count(queue)
        seen: list[DeadLetter] = []
        while len(seen) < min(limit, total):
            message = await queue.get(no_ack=False, fail=False, timeout=5)
            if message is None:
                break
            seen.append(describe(message))
        # Closing the channel without acking hands every fetched message back to the queue.
        await channel.close()
        return total, seen
    finally:
        await connection.close()


async def requeue_dead_letters(amqp_url: str, group: str, *, limit: int | None = None) -> int:
    """Move up to ``limit`` parked messages (all present now when None) back to ``group``."""
    connection = await connect(amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        queue = await _dlq(channel, group)
        await channel.declare_queue(group, passive=True)
        # Only what is parked now: a message that fails again is not picked up twice.
        budget = _message_count(queue)
        if limit is not None:
            budget = min(budget, limit)
        moved = 0
        while moved < budget:
            message = await queue.get(no_ack=False, fail=False, timeout=5)
            if message is None:
                break
            requeued = (_int((message.headers or {}).get("x-requeued")) or 0) + 1
            copy = copy_message(message, {ATTEMPT_HEADER: 0, "x-requeued": requeued},
                                drop=("x-dead-letter-reason", "x-dead-lettered-at", "x-consumer-group"))
            result = await channel.default_exchange.publish(copy, routing_key=group, timeout=10)
            if isinstance(result, DeliveredMessage):
                await message.nack(requeue=True)
                raise NoSuchGroup(group)
            await message.ack()
            moved += 1
        return moved
    finally:
        await connection.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.messaging.dlq", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_list = sub.add_parser("list", help="show parked messages (they stay parked)")
    p_list.add_argument("--group", required=True)
    p_list.add_argument("--limit", type=int, default=100)
    p_list.add_argument("--json", action="store_true", help="one JSON object per line")
    p_requeue = sub.add_parser("requeue", help="move parked messages back to the group's queue")
    p_requeue.add_argument("--group", required=True)
    p_requeue.add_argument("--limit", type=int, default=None)
    args = parser.parse_args(argv)
    settings = BaseServiceSettings()
    url = settings.amqp_url.get_secret_value()
    try:
        if args.command == "list":
            total, items = asyncio.run(list_dead_letters(url, args.group, limit=args.limit))
            if args.json:
                for item in items:
                    print(json.dumps(asdict(item)))
            else:
                print(f"{dlq_name(args.group)}: {total} message(s) (exchange {settings.events_exchange})")
                for item in items:
                    print(f"{item.message_id}  {item.type}  reason={item.reason}  attempts={item.attempts}  "
                          f"at={item.dead_lettered_at}  error={item.error}")
        else:
            moved = asyncio.run(requeue_dead_letters(url, args.group, limit=args.limit))
            print(f"requeued {moved} message(s) from {dlq_name(args.group)} to {args.group}")
    except NoSuchGroup as exc:
        print(f"dlq: no queues for consumer group {exc}", file=sys.stderr)
        return 1
    except (TimeoutError, OSError, aio_pika.exceptions.AMQPException) as exc:
        print(f"dlq: broker error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
