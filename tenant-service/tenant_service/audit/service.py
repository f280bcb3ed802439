"""What the audit log does: record one event (inside the consumer's transaction, next to the
inbox row, so a redelivery adds nothing), verify an organization's hash chain, and apply
retention without breaking it."""
from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg

from shared.db import scope_transaction, tenant_transaction
from shared.messaging.envelope import Event

from . import repository
from .chain import ChainWalker, Verification

log = logging.getLogger("tenant_service.audit")

AUDIT_BINDINGS = ["#"]  # every event type


async def record_event(conn: asyncpg.Connection, event: Event) -> None:
    if event.tenant_id is None:
        # User-level events (signup, login without an organization) belong to no chain.
        await repository.insert_audit_event(conn, event)
        return
    # Scope the transaction to the event's organization (RETURNING reads the new row under the
    # read policy; a batch of several organizations re-scopes per event) and lock its chain
    # head: one statement. Then the append and the head's move: one more.
    head = await repository.scope_and_lock_chain_head(conn, event.tenant_id)
    await repository.append_chained(conn, event, seq=head.last_seq + 1, prev_hash=head.last_hash)


class ChainBatchConflict(Exception):
    """A batch held an event already recorded: the consumer rolls the batch back and applies its
    events one by one (shared.messaging.consumer), where a duplicate is simply skipped."""


async def record_events(conn: asyncpg.Connection, events: list[Event]) -> None:
    """A batch of deliveries (the consumer's transaction): the events of no organization in one
    statement, then each organization's events appended to its chain in delivery order, in one
    statement per organization after its head is locked. Heads are locked in organization id
    order, so two consumer replicas never wait on each other's heads in a circle."""
    unchained = [event for event in events if event.tenant_id is None]
    if unchained:
        await repository.insert_audit_events(conn, unchained)
    by_organization: dict[UUID, list[Event]] = {}
    for event in events:
        if event.tenant_id is not None:
            by_organization.setdefault(event.tenant_id, []).append(event)
    for tenant_id in sorted(by_organization):
        chained = by_organization[tenant_id]
        if len(chained) == 1:
            await record_event(conn, chained[0])
            continue
        head = await repository.scope_and_lock_chain_head(conn, tenant_id)
        appended = await repository.append_chained_many(conn, chained, seq=head.last_seq + 1,
                                                        prev_hash=head.last_hash)
        if appended != len(chained):
            raise ChainBatchConflict(f"{len(chained) - appended} of {len(chained)} events already recorded")


async def verify_chain(pool: asyncpg.Pool, org_id: UUID) -> Verification:
    """Walk the organization's chain from its checkpoint; the first event that does not follow
    from the one before it is named. One transaction (a consistent snapshot), read in batches."""
    # One snapshot for the head and the links (an append meanwhile must not look like a gap).
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        await scope_transaction(conn, org_id)
        head = await repository.chain_head(conn, org_id)
        walker = ChainWalker(head)
        async for link in repository.chain_links(conn, org_id, after_seq=head.checkpoint_seq):
            if not walker.feed(link):
                break
    return walker.finish()


async def chained_organizations(pool: asyncpg.Pool) -> list[UUID]:
    async with pool.acquire() as conn:
        return await repository.chained_organizations(conn)


async def set_retention(pool: asyncpg.Pool, org_id: UUID, days: int | None) -> None:
    async with pool.acquire() as conn:
        await repository.set_retention_days(conn, org_id, days)


async def apply_retention(pool: asyncpg.Pool, org_id: UUID, *, default_days: int,
                          now: datetime | None = None) -> int:
    """Remove the organization's events older than its retention (its own ``retention_days``,
    else ``default_days``; 0 keeps everything) as a prefix of its chain, and move the chain's
    checkpoint to the last one removed, so what remains still verifies. A chain that does not
    verify is left untouched (its evidence is kept). Returns how many events were removed."""
    async with pool.acquire() as conn:
        days = await repository.retention_days_of(conn, org_id) or default_days
    if days <= 0:
        return 0
    before = (now or datetime.now(UTC)) - timedelta(days=days)
    verification = await verify_chain(pool, org_id)
    if verification.first_broken_id is not None:
        log.warning("audit chain broken; retention skipped",
                    extra={"organization_id": str(org_id), "first_broken_id": str(verification.first_broken_id)})
        return 0
    async with tenant_transaction(pool, org_id) as conn:
        head = await repository.lock_chain_head(conn, org_id)
        cut = await repository.retention_cut(conn, org_id, head=head, before=before)
        if cut is None:
            return 0
        upto, hash_ = cut
        removed = await repository.purge(conn, org_id, upto=upto, hash=hash_)
    log.info("audit retention applied", extra={"organization_id": str(org_id), "removed": removed,
                                               "checkpoint_seq": upto})
    return removed


async def apply_retention_everywhere(pool: asyncpg.Pool, *, default_days: int) -> int:
    removed = 0
    for org_id in await chained_organizations(pool):
        removed += await apply_retention(pool, org_id, default_days=default_days)
    return removed
