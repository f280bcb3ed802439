"""The organization's audit log (filled by the audit consumer), newest first."""
from __future__ import annotations

import json
from uuid import UUID

import asyncpg

from shared.db import tenant_transaction
from shared.pagination import CursorCodec

from .. import paging
from ..access import require_live
from . import repository
from .schemas import AuditEventQuery


class AuditEventService:
    def __init__(self, pool: asyncpg.Pool, *, cursors: CursorCodec):
        self.pool, self.cursors = pool, cursors

    async def list(self, *, org_id: UUID, query: AuditEventQuery) -> tuple[list[dict], str | None]:
        after = paging.decode_key(self.cursors, query.cursor)
        async with tenant_transaction(self.pool, org_id) as conn:
            await require_live(conn, org_id)
            rows = await repository.list_events(
                conn, tenant_id=org_id, type=query.type, actor_id=query.actor_id, subject_id=query.subject_id,
                since=query.since, until=query.until, after=after, limit=query.limit + 1)
        rows, cursor = paging.next_cursor(self.cursors, rows, query.limit, lambda r: (r.occurred_at, r.id))
        return [json.loads(r.envelope) for r in rows], cursor
