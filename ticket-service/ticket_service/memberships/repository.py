"""SQL of the membership read model. Every statement runs in a transaction scoped to one
organization (row-level security), like the ticket tables."""
from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

ASSIGNABLE_ROLES = ("agent", "admin", "owner")


async def scope_to_organization(conn: asyncpg.Connection, *, org_id: UUID) -> None:
    """Transaction-local, like shared.db.tenant_transaction, for a caller that already holds
    a transaction (the event consumer's, which also records the inbox row)."""
    await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(org_id))


async def apply_membership(conn: asyncpg.Connection, *, org_id: UUID, user_id: UUID, role: str, active: bool,
                           event_at: datetime) -> bool:
    """Upsert unless the row already reflects a newer event (out-of-order delivery).
    Returns whether the row changed."""
    changed = await conn.fetchval(
        """
        INSERT INTO membership (org_id, user_id, role, active, event_at)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (org_id, user_id) DO UPDATE
            SET role = EXCLUDED.role, active = EXCLUDED.active, event_at = EXCLUDED.event_at
            WHERE membership.event_at < EXCLUDED.event_at
        RETURNING true
        """, org_id, user_id, role, active, event_at)
    return bool(changed)


async def mark_organization_deleted(conn: asyncpg.Connection, *, org_id: UUID, deleted_at: datetime) -> None:
    await conn.execute(
        "INSERT INTO deleted_organization (org_id, deleted_at) VALUES ($1, $2) ON CONFLICT (org_id) DO NOTHING",
        org_id, deleted_at)


async def organization_is_live(conn: asyncpg.Connection) -> bool:
    return not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM deleted_organization)")


async def is_assignable(conn: asyncpg.Connection, *, user_id: UUID) -> bool:
    return bool(await conn.fetchval(
        "SELECT true FROM membership WHERE user_id = $1 AND active AND role = ANY($2::text[])",
        user_id, list(ASSIGNABLE_ROLES)))
