"""SQL for reading the audit log. Runs inside shared.db.tenant_transaction: the table's
row-level-security policy limits every read to that organization whatever the WHERE says."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg


@dataclass(frozen=True)
class AuditRecord:
    id: UUID
    occurred_at: datetime
    envelope: str  # the stored JSON text, passed through untouched


async def list_events(conn: asyncpg.Connection, *, tenant_id: UUID, type: str | None, actor_id: UUID | None,
                      subject_id: str | None, since: datetime | None, until: datetime | None,
                      after: tuple[datetime, UUID] | None, limit: int) -> list[AuditRecord]:
    rows = await conn.fetch(
        "SELECT id, occurred_at, envelope::text AS envelope FROM audit_event "
        "WHERE tenant_id = $1 "
        "  AND ($2::text IS NULL OR type = $2) "
        "  AND ($3::uuid IS NULL OR actor_user_id = $3) "
        "  AND ($4::text IS NULL OR subject_id = $4) "
        "  AND ($5::timestamptz IS NULL OR occurred_at >= $5) "
        "  AND ($6::timestamptz IS NULL OR occurred_at < $6) "
        "  AND ($7::timestamptz IS NULL OR (occurred_at, id) < ($7, $8::uuid)) "
        "ORDER BY occurred_at DESC, id DESC LIMIT $9",
        tenant_id, type, actor_id, subject_id, since, until,
        after[0] if after else None, after[1] if after else None, limit)
    return [AuditRecord(**dict(r)) for r in rows]
