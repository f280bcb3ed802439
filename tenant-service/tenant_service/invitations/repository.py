"""SQL for invitations. Only the token's sha256 is ever stored or looked up."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from ..paging import fetch_page


@dataclass(frozen=True)
class InvitationRecord:
    id: UUID
    organization_id: UUID
    email: str
    role: str
    invited_by: UUID
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None
    revoked_at: datetime | None
    expired: bool


_COLS = ("id, organization_id, email, role, invited_by, created_at, expires_at, accepted_at, revoked_at, "
         "expires_at <= now() AS expired")


def _inv(row: asyncpg.Record | None) -> InvitationRecord | None:
    return None if row is None else InvitationRecord(**dict(row))


def _returned_inv(row: asyncpg.Record | None) -> InvitationRecord:
    """The row of an INSERT ... RETURNING: always there."""
    if row is None:
        raise LookupError("INSERT ... RETURNING returned no invitation row")
    return InvitationRecord(**dict(row))


async def insert(conn: asyncpg.Connection, *, id: UUID, organization_id: UUID, email: str, role: str,
                 token_hash: bytes, invited_by: UUID, ttl_s: int) -> InvitationRecord:
    row = await conn.fetchrow(
        "WITH t AS (SELECT clock_timestamp() AS at) "
        "INSERT INTO invitation (id, organization_id, email, role, token_hash, invited_by, created_at, expires_at) "
        "SELECT $1, $2, $3, $4, $5, $6, t.at, t.at + make_interval(secs => $7) FROM t "
        "RETURNING " + _COLS,
        id, organization_id, email, role, token_hash, invited_by, float(ttl_s))
    return _returned_inv(row)


async def find_by_token_hash(conn: asyncpg.Connection, *, token_hash: bytes, for_update: bool = False
                             ) -> InvitationRecord | None:
    lock = " FOR UPDATE" if for_update else ""
    return _inv(await conn.fetchrow(f"SELECT {_COLS} FROM invitation WHERE token_hash = $1{lock}", token_hash))


async def get(conn: asyncpg.Connection, *, organization_id: UUID, invitation_id: UUID,
              for_update: bool = False) -> InvitationRecord | None:
    lock = " FOR UPDATE" if for_update else ""
    return _inv(await conn.fetchrow(
        f"SELECT {_COLS} FROM invitation WHERE organization_id = $1 AND id = $2{lock}",
        organization_id, invitation_id))


async def list_pending(conn: asyncpg.Connection, *, organization_id: UUID, after: tuple[datetime, UUID] | None,
                       limit: int) -> list[InvitationRecord]:
    """Pending invitations (neither accepted, revoked nor expired), newest first."""
    select = (f"SELECT {_COLS} FROM invitation WHERE organization_id = $1 AND accepted_at IS NULL "
              "AND revoked_at IS NULL AND expires_at > now() ")
    order = "ORDER BY created_at DESC, id DESC LIMIT $2"
    rows = await fetch_page(conn, select, order, "AND (created_at, id) < ($3, $4) ", [organization_id, limit], after)
    return [InvitationRecord(**dict(r)) for r in rows]


async def mark_accepted(conn: asyncpg.Connection, *, invitation_id: UUID, user_id: UUID) -> None:
    await conn.execute("UPDATE invitation SET accepted_at = clock_timestamp(), accepted_by = $2 WHERE id = $1",
                       invitation_id, user_id)


async def mark_revoked(conn: asyncpg.Connection, *, invitation_id: UUID) -> None:
    await conn.execute("UPDATE invitation SET revoked_at = clock_timestamp() WHERE id = $1", invitation_id)


async def email_is_member(conn: asyncpg.Connection, *, organization_id: UUID, email: str) -> bool:
    return await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM membership m JOIN user_profile p ON p.user_id = m.user_id "
        "WHERE m.organization_id = $1 AND p.email = $2)", organization_id, email)
