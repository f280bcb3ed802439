"""SQL for platform staff grants."""
from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg


async def grant(conn: asyncpg.Connection, *, user_id: UUID, now: datetime) -> bool:
    """False when the user was staff already."""
    status = await conn.execute(
        "INSERT INTO staff_grant (user_id, granted_at) VALUES ($1, $2) ON CONFLICT (user_id) DO NOTHING",
        user_id, now)
    return status.endswith(" 1")


async def revoke(conn: asyncpg.Connection, *, user_id: UUID) -> bool:
    status = await conn.execute("DELETE FROM staff_grant WHERE user_id = $1", user_id)
    return status.endswith(" 1")


async def is_staff(conn: asyncpg.Connection, *, user_id: UUID) -> bool:
    return bool(await conn.fetchval("SELECT true FROM staff_grant WHERE user_id = $1", user_id))


async def list_all(conn: asyncpg.Connection) -> list[tuple[str, datetime]]:
    rows = await conn.fetch("SELECT u.email, s.granted_at FROM staff_grant s JOIN user_account u ON u.id = s.user_id "
                            "ORDER BY s.granted_at, u.email")
    return [(r["email"], r["granted_at"]) for r in rows]
