"""SQL of the audit log (append-only: the app role may insert and read, never change or delete
an event; retention purges through the owner's audit_purge() only)."""
from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from uuid import UUID

import asyncpg

from shared.db import TENANT_SETTING
from shared.messaging.envelope import Event
from shared.messaging.outbox import event_json

from .chain import ChainHead, ChainLink, hash_sql

_COLUMNS = "id, tenant_id, type, occurred_at, actor_user_id, subject_type, subject_id, request_id, envelope"


def _values(event: Event) -> tuple:
    return (event.id, event.tenant_id, event.type, event.occurred_at, event.actor.user_id, event.subject.type,
            event.subject.id, event.request_id, event_json(event))


async def insert_audit_event(conn: asyncpg.Connection, event: Event) -> bool:
    """Append ``event`` outside any chain (an event of no organization); False when a row with
    its id is already there.

    No conflict target on purpose: naming one needs SELECT on the row, and the read policy
    (one organization per transaction) would refuse it; the primary key is the only one.
    """
    status = await conn.execute(
        f"INSERT INTO audit_event ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb) "
        "ON CONFLICT DO NOTHING", *_values(event))
    return status.endswith(" 1")


_HEAD = "last_seq, last_hash, last_event_id, checkpoint_seq, checkpoint_hash"


def _head(row: asyncpg.Record) -> ChainHead:
    return ChainHead(last_seq=row["last_seq"], last_hash=row["last_hash"], last_event_id=row["last_event_id"],
                     checkpoint_seq=row["checkpoint_seq"], checkpoint_hash=row["checkpoint_hash"])


async def insert_audit_events(conn: asyncpg.Connection, events: list[Event]) -> int:
    """``insert_audit_event`` for several events in one statement; how many rows were new."""
    rows = [_values(event) for event in events]
    status = await conn.execute(
        f"INSERT INTO audit_event ({_COLUMNS}) "
        "SELECT id, tenant, type, occurred_at, actor, subject_type, subject_id, request_id, envelope::jsonb "
        "FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[], $5::uuid[], $6::text[], $7::text[], "
        "$8::text[], $9::text[]) AS e(id, tenant, type, occurred_at, actor, subject_type, subject_id, request_id, "
        "envelope) ON CONFLICT DO NOTHING", *(list(column) for column in zip(*rows, strict=True)))
    return int(status.split()[-1])


async def lock_chain_head(conn: asyncpg.Connection, tenant_id: UUID) -> ChainHead:
    """The organization's chain head, locked until the transaction ends: appends to one
    organization's chain take turns, whichever consumer replica runs them."""
    await conn.execute("INSERT INTO audit_chain (tenant_id) VALUES ($1) ON CONFLICT DO NOTHING", tenant_id)
    row = await conn.fetchrow(f"SELECT {_HEAD} FROM audit_chain WHERE tenant_id = $1 FOR UPDATE", tenant_id)
    return _head(row)


_SCOPE_AND_LOCK = (f"SELECT set_config($2, $3, true) AS scope, {_HEAD} FROM audit_chain "
                   "WHERE tenant_id = $1 FOR UPDATE")


async def scope_and_lock_chain_head(conn: asyncpg.Connection, tenant_id: UUID) -> ChainHead:
    """``lock_chain_head`` that also scopes the transaction to the organization (transaction-
    local, as shared.db.scope_transaction does), in one round trip: the set_config is part of
    the returned row, so it has run whenever the head is returned, before any next statement.
    The organization's first event creates its head first (one more round trip, once)."""
    args = (tenant_id, TENANT_SETTING, str(tenant_id))
    row = await conn.fetchrow(_SCOPE_AND_LOCK, *args)
    if row is None:
        await conn.execute("INSERT INTO audit_chain (tenant_id) VALUES ($1) ON CONFLICT DO NOTHING", tenant_id)
        row = await conn.fetchrow(_SCOPE_AND_LOCK, *args)
    return _head(row)


async def append_chained(conn: asyncpg.Connection, event: Event, *, seq: int, prev_hash: str) -> str | None:
    """Append ``event`` at position ``seq`` after ``prev_hash`` and move the chain head to it, in
    one statement (the caller holds the head's lock); its hash, or None when the event was
    already recorded (the head then stays where it is).

    The conflict target is the event id only: a clash on the position raises (the delivery is
    retried) instead of dropping the event. The transaction is scoped to the event's
    organization, so the read policy lets the statement see its own row and a duplicate."""
    hash_expr = hash_sql("$11::text", "$10::bigint", "$9::jsonb")
    row = await conn.fetchrow(
        f"WITH appended AS (INSERT INTO audit_event ({_COLUMNS}, chain_seq, prev_hash, hash) "
        f"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, {hash_expr}) "
        "ON CONFLICT (id) DO NOTHING RETURNING hash) "
        "UPDATE audit_chain SET last_seq = $10, last_hash = appended.hash, last_event_id = $1, updated_at = now() "
        "FROM appended WHERE audit_chain.tenant_id = $2 RETURNING appended.hash", *_values(event), seq, prev_hash)
    return None if row is None else row["hash"]


# Several events of one organization appended after (seq - 1, prev_hash) in one statement: the
# recursive part links them in order (each hash over the one before it, as append_chained does
# one at a time), then one INSERT and the head's move to the last. $10/$11: the first position
# and the hash before it.
_APPEND_MANY = (
    "WITH RECURSIVE e AS ("
    "    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[], $5::uuid[], $6::text[], "
    "                         $7::text[], $8::text[], $9::jsonb[]) WITH ORDINALITY "
    "        AS e(id, tenant_id, type, occurred_at, actor_user_id, subject_type, subject_id, request_id, envelope, n)),"
    " link AS ("
    f"    SELECT e.n, $10::bigint AS seq, $11::text AS prev_hash, {hash_sql('$11::text', '$10::bigint', 'e.envelope')} "
    "        AS hash FROM e WHERE e.n = 1"
    "    UNION ALL"
    f"    SELECT e.n, link.seq + 1, link.hash, {hash_sql('link.hash', 'link.seq + 1', 'e.envelope')} "
    "    FROM link JOIN e ON e.n = link.n + 1),"
    " appended AS ("
    f"    INSERT INTO audit_event ({_COLUMNS}, chain_seq, prev_hash, hash) "
    "    SELECT e.id, e.tenant_id, e.type, e.occurred_at, e.actor_user_id, e.subject_type, e.subject_id, "
    "           e.request_id, e.envelope, link.seq, link.prev_hash, link.hash "
    "    FROM e JOIN link ON link.n = e.n ORDER BY e.n "
    "    ON CONFLICT (id) DO NOTHING RETURNING id, chain_seq, hash),"
    " last AS (SELECT id, chain_seq, hash FROM appended ORDER BY chain_seq DESC LIMIT 1),"
    " moved AS ("
    "    UPDATE audit_chain SET last_seq = last.chain_seq, last_hash = last.hash, last_event_id = last.id, "
    "           updated_at = now() "
    "    FROM last WHERE audit_chain.tenant_id = $2[1] RETURNING 1)"
    " SELECT (SELECT count(*) FROM appended) AS appended, (SELECT count(*) FROM moved) AS moved")


async def append_chained_many(conn: asyncpg.Connection, events: list[Event], *, seq: int, prev_hash: str) -> int:
    """``append_chained`` for several events of one organization, in order, in one statement (the
    caller holds the head's lock); how many were appended. Fewer than ``len(events)`` means one
    was already recorded: the links after it would then name a hash that is not stored, so the
    caller must roll the transaction back and append one by one (see record_events)."""
    rows = [_values(event) for event in events]
    row = await conn.fetchrow(_APPEND_MANY, *(list(column) for column in zip(*rows, strict=True)), seq, prev_hash)
    return int(row["appended"]) if row["moved"] else 0


async def chain_head(conn: asyncpg.Connection, tenant_id: UUID) -> ChainHead:
    row = await conn.fetchrow(
        "SELECT last_seq, last_hash, last_event_id, checkpoint_seq, checkpoint_hash FROM audit_chain "
        "WHERE tenant_id = $1", tenant_id)
    if row is None:
        return ChainHead(last_seq=0, last_hash="", last_event_id=None, checkpoint_seq=0, checkpoint_hash="")
    return ChainHead(**dict(row))


async def chain_links(conn: asyncpg.Connection, tenant_id: UUID, *, after_seq: int,
                      batch: int = 1000) -> AsyncIterator[ChainLink]:
    """The organization's chained events in chain order, read through a server-side cursor
    (the caller's transaction, scoped to the organization) in batches of ``batch``."""
    recomputed = hash_sql("coalesce(prev_hash, '')", "chain_seq", "envelope")
    query = (
        f"SELECT id, chain_seq, prev_hash, hash, {recomputed} AS recomputed, occurred_at, "
        "envelope->>'occurred_at' AS envelope_occurred_at, "
        "(envelope->>'id' = id::text AND envelope->>'type' = type "
        " AND envelope->>'tenant_id' = tenant_id::text) IS TRUE AS same_ids "
        "FROM audit_event WHERE tenant_id = $1 AND chain_seq > $2 ORDER BY chain_seq")
    async for row in conn.cursor(query, tenant_id, after_seq, prefetch=batch):
        yield ChainLink(id=row["id"], chain_seq=row["chain_seq"], prev_hash=row["prev_hash"], hash=row["hash"],
                        recomputed=row["recomputed"],
                        consistent=row["same_ids"] and _same_instant(row["envelope_occurred_at"], row["occurred_at"]))


def _same_instant(text: str | None, value: datetime) -> bool:
    """The occurred_at column (what the export and the list order by) is the envelope's own."""
    try:
        return text is not None and datetime.fromisoformat(text) == value
    except ValueError:
        return False


async def chained_organizations(conn: asyncpg.Connection) -> list[UUID]:
    return [r["tenant_id"] for r in await conn.fetch("SELECT tenant_id FROM audit_chain ORDER BY tenant_id")]


async def retention_days_of(conn: asyncpg.Connection, tenant_id: UUID) -> int | None:
    return await conn.fetchval("SELECT retention_days FROM audit_chain WHERE tenant_id = $1", tenant_id)


async def set_retention_days(conn: asyncpg.Connection, tenant_id: UUID, days: int | None) -> None:
    await conn.execute(
        "INSERT INTO audit_chain (tenant_id, retention_days) VALUES ($1, $2) "
        "ON CONFLICT (tenant_id) DO UPDATE SET retention_days = EXCLUDED.retention_days, updated_at = now()",
        tenant_id, days)


async def retention_cut(conn: asyncpg.Connection, tenant_id: UUID, *, head: ChainHead,
                        before: datetime) -> tuple[int, str] | None:
    """The chain prefix older than ``before``: (position, stored hash) of its last event, up to
    the first chained event at or after ``before`` (a purge never leaves a hole in the chain)."""
    first_kept = await conn.fetchval(
        "SELECT min(chain_seq) FROM audit_event WHERE tenant_id = $1 AND chain_seq > $2 AND occurred_at >= $3",
        tenant_id, head.checkpoint_seq, before)
    upto = head.last_seq if first_kept is None else first_kept - 1
    if upto <= head.checkpoint_seq:
        return None
    stored = await conn.fetchval("SELECT hash FROM audit_event WHERE tenant_id = $1 AND chain_seq = $2",
                                 tenant_id, upto)
    return None if stored is None else (upto, stored)


async def purge(conn: asyncpg.Connection, tenant_id: UUID, *, upto: int, hash: str) -> int:
    return await conn.fetchval("SELECT audit_purge($1, $2, $3)", tenant_id, upto, hash)
