"""SQL of the membership read model. Every statement runs in a transaction scoped to one
organization (row-level security), like the ticket tables."""
from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from shared.db import scope_transaction
from shared.permissions import BUILTIN_ROLES, TICKETS_READ_ALL

# An assignee must be able to see the tickets it is given: it holds tickets:read_all. Rows
# from before permissions were recorded (permissions NULL) have their built-in role's set.
ASSIGNABLE_PERMISSION = TICKETS_READ_ALL
LEGACY_ASSIGNABLE_ROLES = tuple(r for r, perms in BUILTIN_ROLES.items() if ASSIGNABLE_PERMISSION in perms)


async def scope_to_organization(conn: asyncpg.Connection, *, org_id: UUID) -> None:
    """Transaction-local, like shared.db.tenant_transaction, for a caller that already holds
    a transaction (the event consumer's, which also records the inbox row)."""
    await scope_transaction(conn, org_id)


async def apply_membership(conn: asyncpg.Connection, *, org_id: UUID, user_id: UUID, role: str,
                           permissions: list[str], active: bool, event_at: datetime) -> bool:
    """Upsert unless the row already reflects a newer event (out-of-order delivery).
    Returns whether the row changed."""
    changed = await conn.fetchval(
        """
        INSERT INTO membership (org_id, user_id, role, permissions, active, event_at)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (org_id, user_id) DO UPDATE
            SET role = EXCLUDED.role, permissions = EXCLUDED.permissions, active = EXCLUDED.active,
                event_at = EXCLUDED.event_at
            WHERE membership.event_at < EXCLUDED.event_at
        RETURNING true
        """, org_id, user_id, role, permissions, active, event_at)
    return bool(changed)


async def apply_role_change(conn: asyncpg.Connection, *, old_name: str, name: str, permissions: list[str]) -> int:
    """A custom role renamed or given other permissions: every holder in the scoped
    organization follows. Returns how many rows changed."""
    result = await conn.execute(
        "UPDATE membership SET role = $2, permissions = $3 WHERE role = $1", old_name, name, permissions)
    return int(result.split()[-1])


async def mark_organization_deleted(conn: asyncpg.Connection, *, org_id: UUID, deleted_at: datetime) -> None:
    await conn.execute(
        "INSERT INTO deleted_organization (org_id, deleted_at) VALUES ($1, $2) ON CONFLICT (org_id) DO NOTHING",
        org_id, deleted_at)


async def organization_is_live(conn: asyncpg.Connection) -> bool:
    return not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM deleted_organization)")


async def is_assignable(conn: asyncpg.Connection, *, user_id: UUID) -> bool:
    return bool(await conn.fetchval(
        "SELECT true FROM membership WHERE user_id = $1 AND active AND ("
        "$2 = ANY(permissions) OR (permissions IS NULL AND role = ANY($3::text[])))",
        user_id, ASSIGNABLE_PERMISSION, list(LEGACY_ASSIGNABLE_ROLES)))
