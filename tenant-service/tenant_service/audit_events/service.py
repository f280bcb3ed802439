"""The organization's audit log (filled by the audit consumer), newest first."""
from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from datetime import datetime
from uuid import UUID

import asyncpg

from shared.db import tenant_transaction
from shared.pagination import KeysetCursors

from ..access import require_live
from ..audit.chain import Verification
from ..audit.service import verify_chain
from . import repository
from .schemas import AuditEventQuery, AuditExportQuery

EXPORT_BATCH = 1000


class AuditEventService:
    def __init__(self, pool: asyncpg.Pool, *, cursor_secret: str):
        self.pool = pool
        self.cursors = KeysetCursors(cursor_secret, "audit-events", datetime, UUID)  # (occurred_at, id)

    async def list(self, *, org_id: UUID, query: AuditEventQuery) -> tuple[list[dict], str | None]:
        # Bound to every filter: a cursor of one selection never pages another.
        cursors = self.cursors.bind(org=org_id, type=query.type, actor_id=query.actor_id, subject_id=query.subject_id,
                                    since=query.since, until=query.until)
        after = cursors.after(query.cursor)
        async with tenant_transaction(self.pool, org_id) as conn:
            await require_live(conn, org_id)
            rows = await repository.list_events(
                conn, tenant_id=org_id, type=query.type, actor_id=query.actor_id, subject_id=query.subject_id,
                since=query.since, until=query.until, after=after, limit=query.limit + 1)
        rows, cursor = cursors.page(rows, query.limit, lambda r: (r.occurred_at, r.id))
        return [json.loads(r.envelope) for r in rows], cursor

    async def export(self, *, org_id: UUID, query: AuditExportQuery,
                     batch: int = EXPORT_BATCH) -> AsyncGenerator[bytes, None]:
        """The matching events, oldest first, as NDJSON chunks of ``batch`` lines each.

        Keyset batches, each in its own short transaction: memory stays one batch whatever the
        size, and no connection is held while a slow client reads. The first chunk is read
        before anything is sent, so a deleted organization is still a 404."""
        after = None
        first = True
        while True:
            async with tenant_transaction(self.pool, org_id) as conn:
                if first:
                    await require_live(conn, org_id)
                    first = False
                rows = await repository.list_events(
                    conn, tenant_id=org_id, type=query.type, actor_id=None, subject_id=None, since=query.since,
                    until=query.until, after=after, limit=batch, oldest_first=True)
            if not rows:
                return
            yield "".join(f"{r.envelope}\n" for r in rows).encode()
            if len(rows) < batch:
                return
            after = (rows[-1].occurred_at, rows[-1].id)

    async def verify(self, *, org_id: UUID) -> Verification:
        async with tenant_transaction(self.pool, org_id) as conn:
            await require_live(conn, org_id)
        return await verify_chain(self.pool, org_id)
