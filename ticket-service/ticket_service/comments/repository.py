"""SQL of comments; runs inside a transaction scoped to one organization (row-level security)."""
from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from .schemas import CommentOut

_COLUMNS = "id, ticket_id, author_id, body, internal, created_at"


async def insert_comment(conn: asyncpg.Connection, *, id: UUID, org_id: UUID, ticket_id: UUID, author_id: UUID,
                         body: str, internal: bool) -> CommentOut:
    record = await conn.fetchrow(
        f"""
        INSERT INTO ticket_comment (id, org_id, ticket_id, author_id, body, internal)
        VALUES ($1, $2, $3, $4, $5, $6)
        RETURNING {_COLUMNS}
        """, id, org_id, ticket_id, author_id, body, internal)
    return CommentOut.model_validate(dict(record))


async def list_comments(conn: asyncpg.Connection, *, ticket_id: UUID, include_internal: bool,
                        after: tuple[datetime, UUID] | None, limit: int) -> list[CommentOut]:
    """Oldest first, keyset on (created_at, id) over the (org_id, ticket_id, created_at, id) index."""
    args: list = [ticket_id, include_internal, limit]
    keyset = ""
    if after is not None:
        # Separate SQL rather than "$n IS NULL OR ...", which would keep the planner from
        # starting the index scan at the cursor.
        keyset = "AND (created_at, id) > ($4::timestamptz, $5::uuid)"
        args += [after[0], after[1]]
    records = await conn.fetch(
        f"""
        SELECT {_COLUMNS} FROM ticket_comment
        WHERE ticket_id = $1 AND ($2 OR NOT internal) {keyset}
        ORDER BY created_at, id
        LIMIT $3
        """, *args)
    return [CommentOut.model_validate(dict(r)) for r in records]
