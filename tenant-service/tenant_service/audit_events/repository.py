"""SQL for reading the audit log. Runs inside shared.db.tenant_transaction: the table's
row-level-security policy limits every read to that organization whatever the WHERE says."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg


@dataclass(frozen=True)
class AuditRecord:
    id: UUID
    occurred_at: datetime
    envelope: str  # the stored JSON text, passed through untouched


async def list_events(conn: asyncpg.Connection, *, tenant_id: UUID, type: str | None, actor_id: UUID | None,
                      subject_id: str | None, since: datetime | None, until: datetime | None,
                      after: tuple[datetime, UUID] | None, limit: int,
                      oldest_first: bool = False) -> list[AuditRecord]:
    # Only the filters in use go into the statement (each a fixed fragment with a $n value):
    # one catch-all statement with "$n IS NULL OR ..." gets a generic plan that reads and sorts
    # every event of the organization, where this shape walks an index in order and stops at
    # the limit.
    where: list[str] = ["tenant_id = $1"]
    args: list[Any] = [tenant_id]

    def add(fragment: str, *values) -> None:
        args.extend(values)
        where.append(fragment.format(*(f"${len(args) - len(values) + i + 1}" for i in range(len(values)))))

    if type is not None:
        add("type = {}", type)
    if actor_id is not None:
        add("actor_user_id = {}", actor_id)
    if subject_id is not None:
        add("subject_id = {}", subject_id)
    if since is not None:
        add("occurred_at >= {}", since)
    if until is not None:
        add("occurred_at < {}", until)
    if after is not None:
        add("(occurred_at, id) > ({}, {})" if oldest_first else "(occurred_at, id) < ({}, {})", after[0], after[1])
    args.append(limit)
    order = "occurred_at, id" if oldest_first else "occurred_at DESC, id DESC"
    rows = await conn.fetch(
        "SELECT id, occurred_at, envelope::text AS envelope FROM audit_event WHERE " + " AND ".join(where)
        + f" ORDER BY {order} LIMIT ${len(args)}", *args)
    return [AuditRecord(**dict(r)) for r in rows]
