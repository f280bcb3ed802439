"""SQL for accounts."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from shared.errors import EmailTaken

from ..tenants.cache import CACHED_MEMBERSHIPS, KeptMemberships
from ..tenants.cache import decode as decode_kept


@dataclass(frozen=True)
class User:
    id: UUID
    email: str
    name: str
    password_hash: str
    created_at: datetime
    password_changed_at: datetime | None = None


_COLUMNS = "id, email, name, password_hash, created_at, password_changed_at"
_FIELDS = tuple(_COLUMNS.split(", "))


def _user(row: asyncpg.Record) -> User:
    return User(**dict(row))


def _user_or_none(row: asyncpg.Record | None) -> User | None:
    return _user(row) if row is not None else None


async def insert_user(conn: asyncpg.Connection, *, user_id: UUID, email: str, name: str,
                      password_hash: str) -> User:
    try:
        row = await conn.fetchrow(
            f"INSERT INTO user_account (id, email, name, password_hash) VALUES ($1, $2, $3, $4) "
            f"RETURNING {_COLUMNS}", user_id, email, name, password_hash)
    except asyncpg.UniqueViolationError:
        raise EmailTaken() from None
    return _user(row)


async def get_by_email(conn: asyncpg.Connection, *, email: str) -> User | None:
    return _user_or_none(await conn.fetchrow(f"SELECT {_COLUMNS} FROM user_account WHERE email = $1", email))


async def get_by_email_at(conn: asyncpg.Connection, *, email: str, clock_sql: str,
                          cache_ttl_ms: int = 0) -> tuple[User | None, int, KeptMemberships | None]:
    """The account with ``email`` (or None) and, in the same round trip, the value of the SQL
    expression ``clock_sql`` (an integer: the sign-in's clock, read after the account) and the
    memberships kept for it, if a sign-in may still use them (tenants/cache.py)."""
    row = await conn.fetchrow(
        f"SELECT {clock_sql} AS clock, u.*, cached.* FROM (SELECT {_COLUMNS} FROM user_account WHERE email = $1) u "
        f"RIGHT JOIN (VALUES (1)) AS one(x) ON true {CACHED_MEMBERSHIPS.format(clock=clock_sql)}",
        email, cache_ttl_ms)
    clock = int(row["clock"])
    if row["id"] is None:
        return None, clock, None
    return (User(**{k: row[k] for k in _FIELDS}), clock,
            decode_kept(row["cached_memberships"], row["cached_as_of_ms"]))


async def get_by_id(conn: asyncpg.Connection, *, user_id: UUID, for_update: bool = False) -> User | None:
    sql = f"SELECT {_COLUMNS} FROM user_account WHERE id = $1" + (" FOR UPDATE" if for_update else "")
    return _user_or_none(await conn.fetchrow(sql, user_id))


async def update_password_hash(conn: asyncpg.Connection, *, user_id: UUID, password_hash: str,
                               changed: bool) -> None:
    """``changed``: a new password (recorded) rather than the same one re-hashed with new parameters."""
    await conn.execute(
        "UPDATE user_account SET password_hash = $2, updated_at = clock_timestamp(), "
        "password_changed_at = CASE WHEN $3 THEN clock_timestamp() ELSE password_changed_at END "
        "WHERE id = $1", user_id, password_hash, changed)


async def rehash_password(conn: asyncpg.Connection, *, user_id: UUID, verified_hash: str, new_hash: str) -> bool:
    """The same password re-hashed with new parameters, only over the hash it was verified
    against (compare-and-set); False when the hash changed meanwhile."""
    return bool(await conn.fetchval(
        "UPDATE user_account SET password_hash = $3, updated_at = clock_timestamp() "
        "WHERE id = $1 AND password_hash = $2 RETURNING true", user_id, verified_hash, new_hash))


async def replace_password_hash(conn: asyncpg.Connection, *, user_id: UUID, password_hash: str,
                                expected: User | None) -> bool:
    """A new password (``password_changed_at`` set). With ``expected`` (the account as read when
    its current password was verified) only if the password was not changed since; a re-hash of
    the same password in between does not count as a change."""
    return bool(await conn.fetchval(
        "UPDATE user_account SET password_hash = $2, updated_at = clock_timestamp(), "
        "password_changed_at = clock_timestamp() "
        "WHERE id = $1 AND (NOT $3 OR password_changed_at IS NOT DISTINCT FROM $4) RETURNING true",
        user_id, password_hash, expected is not None, expected.password_changed_at if expected else None))
