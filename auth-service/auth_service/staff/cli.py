"""``python -m auth_service staff grant EMAIL | revoke EMAIL | list``: platform staff.

Staff is granted only here, by an operator with the service's database and Redis settings;
no HTTP route grants it. ``revoke`` takes effect on the staff tokens already issued within
seconds (the gateway's ``rv:st`` mark) and on the admin routes at once (checked in the database).
"""
from __future__ import annotations

import asyncio
import sys

import asyncpg
import redis.asyncio as aioredis

from shared.errors import ServiceUnavailable
from shared.web import canonical_email

from ..config import Settings
from . import repository as repo
from . import service

USAGE = "usage: python -m auth_service staff grant EMAIL | revoke EMAIL | list"


async def _run(argv: list[str], settings: Settings) -> int:
    cmd = argv[0] if argv else ""
    expected_args = 1 if cmd == "list" else 2
    if cmd not in ("grant", "revoke", "list") or len(argv) != expected_args:
        print(USAGE, file=sys.stderr)
        return 2
    try:
        conn = await asyncpg.connect(settings.database_url, server_settings={"search_path": settings.db_schema},
                                     timeout=10)
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        print(f"staff: the database is unavailable ({type(exc).__name__}); nothing changed", file=sys.stderr)
        return 1
    try:
        if cmd == "list":
            for email, granted_at in await repo.list_all(conn):
                print(f"{email}  (since {granted_at.isoformat()})")
            return 0
        email = canonical_email(argv[1])
        try:
            if cmd == "grant":
                added = await service.grant(conn, email)
                print(f"{email} is platform staff" + ("" if added else " (already)"))
                return 0
            redis = aioredis.Redis.from_url(settings.redis_url, socket_timeout=2.0, socket_connect_timeout=2.0)
            try:
                removed = await service.revoke(conn, redis, settings, email)
            finally:
                await redis.aclose()
            print(f"{email} is no longer platform staff" + ("" if removed else " (was not staff)"))
            return 0
        except LookupError:
            print(f"staff: no account with the email {email}", file=sys.stderr)
            return 1
        except ServiceUnavailable as exc:
            print(f"staff: {exc.detail}", file=sys.stderr)
            return 1
    finally:
        await conn.close()


def cli(argv: list[str], settings: Settings | None = None) -> int:
    return asyncio.run(_run(argv, settings or Settings()))
