"""SQL for the user profiles mirrored from auth-service."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg


@dataclass(frozen=True)
class ProfileRecord:
    user_id: UUID
    email: str
    name: str


async def upsert(conn: asyncpg.Connection, *, user_id: UUID, email: str, name: str, changed_at: datetime) -> None:
    """Insert or update; an older change (a late or redelivered event) never overwrites a newer one."""
    await conn.execute(
        "INSERT INTO user_profile (user_id, email, name, updated_at) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (user_id) DO UPDATE SET email = EXCLUDED.email, name = EXCLUDED.name, "
        "  updated_at = EXCLUDED.updated_at WHERE user_profile.updated_at <= EXCLUDED.updated_at",
        user_id, email, name, changed_at)


async def get(conn: asyncpg.Connection, *, user_id: UUID) -> ProfileRecord | None:
    row = await conn.fetchrow("SELECT user_id, email, name FROM user_profile WHERE user_id = $1", user_id)
    return None if row is None else ProfileRecord(**dict(row))
