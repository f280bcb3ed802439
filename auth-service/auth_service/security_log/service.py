"""Reading the security log, and the background task that forgets old entries."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from uuid import UUID

import asyncpg
from aiohttp import web

from shared.auth import Principal
from shared.db import DB_POOL
from shared.pagination import KeysetCursors, PageQuery
from shared.tasks import cancel_and_wait

from ..config import Settings
from . import repository as repo
from .schemas import SecurityEventOut

log = logging.getLogger(__name__)

PURGE_INTERVAL_S = 3600.0


class SecurityLogService:
    def __init__(self, *, pool: asyncpg.Pool, settings: Settings):
        self.pool = pool
        self.cursors = KeysetCursors(settings.cursor_secret.get_secret_value(), "auth.security-events",
                                     datetime, UUID)  # (occurred_at, id)

    async def list(self, principal: Principal, query: PageQuery) -> tuple[list[SecurityEventOut], str | None]:
        cursors = self.cursors.bind(user=principal.user_id)
        after = cursors.after(query.cursor)
        async with self.pool.acquire() as conn:
            rows = await repo.list_for_user(conn, user_id=principal.user_id, limit=query.limit + 1, after=after)
        rows, next_cursor = cursors.page(rows, query.limit, lambda r: (r.occurred_at, r.id))
        items = [SecurityEventOut(id=r.id, type=r.type, occurred_at=r.occurred_at, ip=r.ip, user_agent=r.user_agent)
                 for r in rows]
        return items, next_cursor


SECURITY_LOG = web.AppKey("security_log", SecurityLogService)


def security_log_ctx(settings: Settings) -> Callable[[web.Application], AsyncIterator[None]]:
    """The service, and a background task purging entries older than the retention."""
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        pool = app[DB_POOL]
        app[SECURITY_LOG] = SecurityLogService(pool=pool, settings=settings)

        async def purge_forever() -> None:
            while True:
                try:
                    deleted = await repo.purge_older_than(pool, days=settings.security_event_retention_days)
                    if deleted:
                        log.info("security log purged", extra={"deleted": deleted})
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("security log purge failed", extra={"error": type(exc).__name__})
                await asyncio.sleep(PURGE_INTERVAL_S)
        task = asyncio.create_task(purge_forever(), name="security-log-purge")
        yield
        await cancel_and_wait(task)
    return ctx
