"""SQL of the security log. Entries mirror the auth events that concern one account and are
written in the same transaction as the event, with the request's user agent (which the event
envelope does not carry)."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from shared.messaging import Event
from shared.messaging.outbox import OUTBOX_INSERT, outbox_row

# The event types the log keeps: its `type` is the event's, one name for one concept.
SECURITY_EVENT_TYPES = frozenset({
    "auth.login_succeeded", "auth.login_failed", "auth.password_changed", "auth.password_reset",
    "auth.email_verified", "auth.session_revoked", "auth.refresh_token_reused",
})
_PURGE_CHUNK = 5000


@dataclass(frozen=True)
class SecurityEvent:
    id: UUID
    type: str
    occurred_at: datetime
    ip: str | None
    user_agent: str | None


def account_of(event: Event) -> UUID | None:
    """The account an event concerns (None for a failed login of an unknown email)."""
    try:
        if event.type in ("auth.session_revoked", "auth.refresh_token_reused"):
            return UUID(str(event.data["user_id"]))
        if event.subject.type == "user":
            return UUID(event.subject.id)
    except (KeyError, ValueError):
        return None
    return None


# The log entry of an event: SECURITY_EVENT_INSERT followed by VALUES or a SELECT of
# security_row(event, user_agent) as (uuid, uuid, text, timestamptz, text, text).
SECURITY_EVENT_INSERT = "INSERT INTO security_event (id, user_id, type, occurred_at, ip, user_agent)"


def security_row(event: Event, user_agent: str | None) -> tuple[UUID, UUID, str, datetime, str | None,
                                                                 str | None] | None:
    """The security log row of ``event``, or None when the log does not keep it (not a security
    event, or no account: a failed login of an unknown email)."""
    if event.type not in SECURITY_EVENT_TYPES:
        return None
    user_id = account_of(event)
    if user_id is None:
        return None
    return event.id or uuid.uuid4(), user_id, event.type, event.occurred_at, event.actor.ip, user_agent


async def record_event(conn: asyncpg.Connection, event: Event, user_agent: str | None) -> None:
    """Log ``event`` for its account when it is a security event (inside its transaction)."""
    row = security_row(event, user_agent)
    if row is None:
        return
    await conn.execute(
        f"{SECURITY_EVENT_INSERT} SELECT $1, $2, $3, $4, $5, $6 "
        "WHERE EXISTS (SELECT 1 FROM user_account WHERE id = $2)", *row)


async def add_event_and_record(conn: asyncpg.Connection, event: Event, user_agent: str | None) -> None:
    """``event`` into the outbox and, when it is a security event, into the account's log, in
    one statement: its own transaction, for an event that is the whole change (a failed login)."""
    row = security_row(event, user_agent)
    if row is None:
        await conn.execute(f"{OUTBOX_INSERT} VALUES ($1, $2, $3::jsonb)", *outbox_row(event))
        return
    await conn.execute(
        f"WITH o AS ({OUTBOX_INSERT} VALUES ($1, $2, $3::jsonb)) "
        f"{SECURITY_EVENT_INSERT} SELECT $4, $5, $2, $6, $7, $8 "
        "WHERE EXISTS (SELECT 1 FROM user_account WHERE id = $5)", *outbox_row(event), *row[:2], *row[3:])


async def list_for_user(conn: asyncpg.Connection, *, user_id: UUID, limit: int,
                        after: tuple[datetime, UUID] | None) -> list[SecurityEvent]:
    """Newest first; ``after`` is the (occurred_at, id) of the last row of the previous page."""
    if after is None:
        rows = await conn.fetch(
            "SELECT id, type, occurred_at, ip, user_agent FROM security_event WHERE user_id = $1 "
            "ORDER BY occurred_at DESC, id DESC LIMIT $2", user_id, limit)
    else:
        rows = await conn.fetch(
            "SELECT id, type, occurred_at, ip, user_agent FROM security_event WHERE user_id = $1 "
            "AND (occurred_at, id) < ($2, $3) ORDER BY occurred_at DESC, id DESC LIMIT $4",
            user_id, after[0], after[1], limit)
    return [SecurityEvent(**dict(r)) for r in rows]


async def purge_older_than(pool: asyncpg.Pool, *, days: int) -> int:
    total = 0
    async with pool.acquire() as conn:
        while True:
            status = await conn.execute(
                "DELETE FROM security_event WHERE id IN (SELECT id FROM security_event "
                "WHERE occurred_at < clock_timestamp() - make_interval(days => $1) LIMIT $2)", days, _PURGE_CHUNK)
            deleted = int(status.split()[-1])
            total += deleted
            if deleted < _PURGE_CHUNK:
                return total
