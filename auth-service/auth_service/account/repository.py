"""SQL for email-verification and password-reset tokens (stored as their sha256 only)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg


@dataclass(frozen=True)
class EmailToken:
    token_hash: bytes
    user_id: UUID
    expires_at: datetime
    used_at: datetime | None
    email: str | None = None


async def insert_verification(conn: asyncpg.Connection, *, token_hash: bytes, user_id: UUID, email: str,
                              ttl_s: int) -> None:
    await conn.execute(
        "INSERT INTO email_verification_token (token_hash, user_id, email, expires_at) "
        "VALUES ($1, $2, $3, clock_timestamp() + make_interval(secs => $4))", token_hash, user_id, email, float(ttl_s))


async def lock_verification(conn: asyncpg.Connection, *, token_hash: bytes) -> EmailToken | None:
    row = await conn.fetchrow(
        "SELECT token_hash, user_id, expires_at, used_at, email FROM email_verification_token "
        "WHERE token_hash = $1 FOR UPDATE", token_hash)
    return EmailToken(**dict(row)) if row else None


async def use_verification(conn: asyncpg.Connection, *, token_hash: bytes) -> None:
    await conn.execute("UPDATE email_verification_token SET used_at = clock_timestamp() WHERE token_hash = $1",
                       token_hash)


async def mark_email_verified(conn: asyncpg.Connection, *, user_id: UUID, email: str) -> str:
    """``verified`` (just now), ``already`` or ``mismatch`` (the account's email is another)."""
    row = await conn.fetchrow(
        "SELECT email, email_verified_at FROM user_account WHERE id = $1 FOR UPDATE", user_id)
    if row is None or row["email"] != email:
        return "mismatch"
    if row["email_verified_at"] is not None:
        return "already"
    await conn.execute("UPDATE user_account SET email_verified_at = clock_timestamp(), "
                       "updated_at = clock_timestamp() WHERE id = $1", user_id)
    return "verified"


async def is_email_verified(conn: asyncpg.Connection, *, user_id: UUID) -> bool:
    return bool(await conn.fetchval("SELECT email_verified_at IS NOT NULL FROM user_account WHERE id = $1",
                                    user_id))


async def lock_user(conn: asyncpg.Connection, *, email: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT id, email, name FROM user_account WHERE email = $1 FOR UPDATE", email)


async def replace_reset_token(conn: asyncpg.Connection, *, token_hash: bytes, user_id: UUID, ttl_s: int) -> None:
    """Only the newest reset token of a user works: the older ones go."""
    await conn.execute("DELETE FROM password_reset_token WHERE user_id = $1", user_id)
    await conn.execute(
        "INSERT INTO password_reset_token (token_hash, user_id, expires_at) "
        "VALUES ($1, $2, clock_timestamp() + make_interval(secs => $3))", token_hash, user_id, float(ttl_s))


async def get_reset(conn: asyncpg.Connection, *, token_hash: bytes, for_update: bool = False) -> EmailToken | None:
    row = await conn.fetchrow(
        "SELECT token_hash, user_id, expires_at, used_at FROM password_reset_token WHERE token_hash = $1"
        + (" FOR UPDATE" if for_update else ""), token_hash)
    return EmailToken(**dict(row)) if row else None


async def use_reset(conn: asyncpg.Connection, *, token_hash: bytes, user_id: UUID) -> None:
    await conn.execute("UPDATE password_reset_token SET used_at = clock_timestamp() WHERE token_hash = $1",
                       token_hash)
    await conn.execute("DELETE FROM password_reset_token WHERE user_id = $1 AND token_hash <> $2",
                       user_id, token_hash)
