"""Test helpers for the event backbone: a throwaway schema holding only the shared outbox and
inbox (so a test's relay never drains a real service's outbox), and broker clean-up."""
from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterable

import asyncpg

from ..migrations import SHARED_MIGRATIONS, Runner
from ..testing import TEST_DATABASE, admin_dsn
from .broker import connect, delete_group_queues


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
