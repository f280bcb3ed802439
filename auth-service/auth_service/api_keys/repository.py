"""SQL for API keys."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg


@dataclass(frozen=True)
class ApiKey:
    id: UUID
    organization_id: UUID
    name: str
    prefix: str
    permissions: list[str]
    created_by: UUID
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


_COLUMNS = ("id, organization_id, name, prefix, permissions, created_by, created_at, expires_at, last_used_at, "
            "revoked_at")


def _key(row: asyncpg.Record) -> ApiKey:
    return ApiKey(**dict(row))


def _key_or_none(row: asyncpg.Record | None) -> ApiKey | None:
    return _key(row) if row is not None else None


async def insert(conn: asyncpg.Connection, *, id: UUID, organization_id: UUID, name: str, prefix: str,
                 key_hash: bytes, permissions: list[str], created_by: UUID, created_at: datetime,
                 expires_at: datetime | None) -> ApiKey:
    return _key(await conn.fetchrow(
        f"INSERT INTO api_key (id, organization_id, name, prefix, key_hash, permissions, created_by, created_at, "
        f"expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {_COLUMNS}",
        id, organization_id, name, prefix, key_hash, permissions, created_by, created_at, expires_at))


async def get_live_by_hash(conn: asyncpg.Connection, *, key_hash: bytes, now: datetime) -> ApiKey | None:
    """The key with this hash, unless it is revoked or expired."""
    return _key_or_none(await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM api_key WHERE key_hash = $1 AND revoked_at IS NULL "
        f"AND (expires_at IS NULL OR expires_at > $2)", key_hash, now))


async def list_live(conn: asyncpg.Connection, *, organization_id: UUID, limit: int,
                    after: tuple[datetime, UUID] | None) -> list[ApiKey]:
    """The organization's keys not revoked (expired ones too), newest first, keyset on (created_at, id)."""
    if after is None:
        rows = await conn.fetch(
            f"SELECT {_COLUMNS} FROM api_key WHERE organization_id = $1 AND revoked_at IS NULL "
            f"ORDER BY created_at DESC, id DESC LIMIT $2", organization_id, limit)
    else:
        rows = await conn.fetch(
            f"SELECT {_COLUMNS} FROM api_key WHERE organization_id = $1 AND revoked_at IS NULL "
            f"AND (created_at, id) < ($3, $4) ORDER BY created_at DESC, id DESC LIMIT $2",
            organization_id, limit, after[0], after[1])
    return [_key(r) for r in rows]


async def revoke(conn: asyncpg.Connection, *, key_id: UUID, organization_id: UUID, now: datetime) -> ApiKey | None:
    """Revoke a live key of this organization; None when there is no such key (or it is revoked)."""
    return _key_or_none(await conn.fetchrow(
        f"UPDATE api_key SET revoked_at = $3 WHERE id = $1 AND organization_id = $2 AND revoked_at IS NULL "
        f"RETURNING {_COLUMNS}", key_id, organization_id, now))


async def revoke_organization(conn: asyncpg.Connection, *, organization_id: UUID, now: datetime) -> list[UUID]:
    return [r["id"] for r in await conn.fetch(
        "UPDATE api_key SET revoked_at = $2 WHERE organization_id = $1 AND revoked_at IS NULL RETURNING id",
        organization_id, now)]


async def record_usage(conn: asyncpg.Connection, *, ids: list[UUID], used_at: list[datetime],
                       min_interval_s: int) -> int:
    """Move ``last_used_at`` forward, at most once per ``min_interval_s`` per key."""
    status = await conn.execute(
        "UPDATE api_key k SET last_used_at = u.used_at "
        "FROM unnest($1::uuid[], $2::timestamptz[]) AS u(id, used_at) "
        "WHERE k.id = u.id AND (k.last_used_at IS NULL "
        "     OR k.last_used_at < u.used_at - make_interval(secs => $3))",
        ids, used_at, min_interval_s)
    return int(status.split()[-1])
