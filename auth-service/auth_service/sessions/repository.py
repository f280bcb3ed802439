"""SQL for sessions and their refresh-token chains."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from shared.messaging import Event
from shared.messaging.outbox import OUTBOX_INSERT, outbox_row

from ..security_log.repository import SECURITY_EVENT_INSERT, security_row
from ..tenants.cache import KEEP_MEMBERSHIPS, ToKeep


@dataclass(frozen=True)
class Session:
    id: UUID
    user_id: UUID
    organization_id: UUID | None
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    user_agent: str | None
    ip: str | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class RefreshToken:
    token_hash: bytes
    session_id: UUID
    user_id: UUID
    created_at: datetime
    spent_at: datetime | None
    successor_hash: bytes | None
    successor_sealed: bytes | None


_SESSION = "id, user_id, organization_id, created_at, last_used_at, expires_at, user_agent, ip, revoked_at"


def _session(row: asyncpg.Record) -> Session:
    return Session(**dict(row))


def _session_or_none(row: asyncpg.Record | None) -> Session | None:
    return _session(row) if row is not None else None


async def insert_session(conn: asyncpg.Connection, *, session_id: UUID, user_id: UUID,
                         organization_id: UUID | None, now: datetime, expires_at: datetime,
                         user_agent: str | None, ip: str | None, first_token_hash: bytes) -> Session:
    """A session with the first refresh token of its chain (one round trip: logins are hot)."""
    row = await conn.fetchrow(
        f"WITH s AS (INSERT INTO session (id, user_id, organization_id, created_at, last_used_at, expires_at, "
        f"user_agent, ip) VALUES ($1, $2, $3, $4, $4, $5, $6, $7) RETURNING {_SESSION}), "
        f"t AS (INSERT INTO refresh_token (token_hash, session_id, created_at) SELECT $8, id, $4 FROM s) "
        f"SELECT {_SESSION} FROM s",
        session_id, user_id, organization_id, now, expires_at, user_agent, ip, first_token_hash)
    return _session(row)


async def open_login_session(conn: asyncpg.Connection, *, session_id: UUID, user_id: UUID,
                             password_changed_at: datetime | None, organization_id: UUID | None, now: datetime,
                             expires_at: datetime, user_agent: str | None, ip: str | None,
                             first_token_hash: bytes, event: Event, keep: ToKeep) -> Session | None:
    """A sign-in, in one statement (its own transaction unless the caller has one open): the
    session with the first refresh token of its chain, ``event`` in the outbox, the account's
    security log entry and the memberships to keep for later sign-ins (``keep``, tenants/cache.py),
    only while the password is still the one verified (its ``password_changed_at`` unchanged);
    None, and nothing written, when it changed since.

    The user row is share-locked to the end of the transaction, so a password change waits for
    this session to commit and then ends it (SessionService.replace_credentials). A change that
    committed first is seen by the lock's re-check of the row (READ COMMITTED re-evaluates the
    condition on the newest version of a row it waited for), and nothing is written.
    """
    entry = security_row(event, user_agent)
    if entry is None or entry[1] != user_id:
        raise ValueError("a sign-in's event is a security event of its account")
    row = await conn.fetchrow(
        "WITH u AS (SELECT id FROM user_account WHERE id = $2 AND password_changed_at IS NOT DISTINCT FROM $9 "
        "FOR SHARE), "
        "s AS (INSERT INTO session (id, user_id, organization_id, created_at, last_used_at, expires_at, "
        f"user_agent, ip) SELECT $1, u.id, $3, $4, $4, $5, $6, $7 FROM u RETURNING {_SESSION}), "
        "t AS (INSERT INTO refresh_token (token_hash, session_id, created_at) SELECT $8, id, $4 FROM s), "
        f"o AS ({OUTBOX_INSERT} SELECT $10, $11, $12::jsonb FROM s), "
        f"e AS ({SECURITY_EVENT_INSERT} SELECT $13, $2, $11, $14, $15, $6 FROM s), "
        f"k AS ({KEEP_MEMBERSHIPS.format(user='$2', memberships='$16', mark_keys='$17', as_of_ms='$18')}) "
        f"SELECT {_SESSION} FROM s",
        session_id, user_id, organization_id, now, expires_at, user_agent, ip, first_token_hash,
        password_changed_at, *outbox_row(event), entry[0], entry[3], entry[4], keep.memberships, keep.mark_keys,
        keep.as_of_ms)
    return _session_or_none(row)


async def insert_refresh_token(conn: asyncpg.Connection, *, token_hash: bytes, session_id: UUID,
                               now: datetime) -> None:
    await conn.execute("INSERT INTO refresh_token (token_hash, session_id, created_at) VALUES ($1, $2, $3)",
                       token_hash, session_id, now)


async def get_refresh_token(conn: asyncpg.Connection, *, token_hash: bytes) -> RefreshToken | None:
    row = await conn.fetchrow(
        "SELECT r.token_hash, r.session_id, s.user_id, r.created_at, r.spent_at, r.successor_hash, "
        "r.successor_sealed FROM refresh_token r JOIN session s ON s.id = r.session_id WHERE r.token_hash = $1",
        token_hash)
    return RefreshToken(**dict(row)) if row is not None else None


async def lock_session(conn: asyncpg.Connection, *, session_id: UUID) -> Session | None:
    """Lock the session row: refreshes of one session are applied one after the other."""
    return _session_or_none(
        await conn.fetchrow(f"SELECT {_SESSION} FROM session WHERE id = $1 FOR UPDATE", session_id))


async def get_session(conn: asyncpg.Connection, *, session_id: UUID) -> Session | None:
    return _session_or_none(await conn.fetchrow(f"SELECT {_SESSION} FROM session WHERE id = $1", session_id))


async def is_unspent(conn: asyncpg.Connection, *, token_hash: bytes) -> bool:
    return bool(await conn.fetchval(
        "SELECT spent_at IS NULL FROM refresh_token WHERE token_hash = $1", token_hash))


async def spend(conn: asyncpg.Connection, *, token_hash: bytes, now: datetime, successor_hash: bytes,
                successor_sealed: bytes) -> None:
    await conn.execute(
        "UPDATE refresh_token SET spent_at = $2, successor_hash = $3, successor_sealed = $4 WHERE token_hash = $1",
        token_hash, now, successor_hash, successor_sealed)
    # The token before this one can no longer be answered with a successor (its successor is
    # now spent): drop that sealed copy rather than keep it around.
    await conn.execute("UPDATE refresh_token SET successor_sealed = NULL WHERE successor_hash = $1",
                       token_hash)


async def touch_session(conn: asyncpg.Connection, *, session_id: UUID, now: datetime,
                        organization_id: UUID | None) -> None:
    await conn.execute("UPDATE session SET last_used_at = $2, organization_id = $3 WHERE id = $1",
                       session_id, now, organization_id)


async def revoke_session(conn: asyncpg.Connection, *, session_id: UUID, now: datetime, reason: str) -> bool:
    """End one session; False when it had already ended."""
    done = await conn.fetchval(
        "UPDATE session SET revoked_at = $2, revoked_reason = $3 WHERE id = $1 AND revoked_at IS NULL "
        "RETURNING true", session_id, now, reason)
    if done:
        await _drop_seals(conn, [session_id])
    return bool(done)


async def revoke_user_sessions(conn: asyncpg.Connection, *, user_id: UUID, now: datetime, reason: str,
                               keep_session_id: UUID | None = None) -> list[UUID]:
    ids = [r["id"] for r in await conn.fetch(
        "UPDATE session SET revoked_at = $2, revoked_reason = $3 "
        "WHERE user_id = $1 AND revoked_at IS NULL AND id IS DISTINCT FROM $4 RETURNING id",
        user_id, now, reason, keep_session_id)]
    await _drop_seals(conn, ids)
    return ids


async def revoke_organization_sessions(conn: asyncpg.Connection, *, organization_id: UUID, now: datetime,
                                       reason: str) -> list[tuple[UUID, UUID]]:
    """End every live session scoped to the organization: [(session_id, user_id)]."""
    rows = await conn.fetch(
        "UPDATE session SET revoked_at = $2, revoked_reason = $3 "
        "WHERE organization_id = $1 AND revoked_at IS NULL RETURNING id, user_id", organization_id, now, reason)
    await _drop_seals(conn, [r["id"] for r in rows])
    return [(r["id"], r["user_id"]) for r in rows]


async def _drop_seals(conn: asyncpg.Connection, session_ids: list[UUID]) -> None:
    if session_ids:
        await conn.execute("UPDATE refresh_token SET successor_sealed = NULL "
                           "WHERE session_id = ANY($1::uuid[]) AND successor_sealed IS NOT NULL", session_ids)


async def list_active(conn: asyncpg.Connection, *, user_id: UUID, now: datetime, idle_since: datetime,
                      limit: int, after: tuple[datetime, UUID] | None = None) -> list[Session]:
    """Live sessions of a user, newest first, keyset-paginated on (created_at, id)."""
    if after is None:
        rows = await conn.fetch(
            f"SELECT {_SESSION} FROM session WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 "
            f"AND last_used_at > $3 ORDER BY created_at DESC, id DESC LIMIT $4", user_id, now, idle_since, limit)
    else:
        rows = await conn.fetch(
            f"SELECT {_SESSION} FROM session WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 "
            f"AND last_used_at > $3 AND (created_at, id) < ($5, $6) ORDER BY created_at DESC, id DESC LIMIT $4",
            user_id, now, idle_since, limit, after[0], after[1])
    return [_session(r) for r in rows]
