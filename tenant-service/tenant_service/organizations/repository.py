"""SQL for organizations. Every function takes the caller's connection (the service owns the
transaction) and returns typed records."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from ..paging import fetch_page


@dataclass(frozen=True)
class OrganizationRecord:
    id: UUID
    name: str
    slug: str
    created_at: datetime
    member_count: int = 0


@dataclass(frozen=True)
class MyOrganizationRecord:
    id: UUID
    name: str
    slug: str
    role: str
    joined_at: datetime


def _org(row: asyncpg.Record | None) -> OrganizationRecord | None:
    return None if row is None else OrganizationRecord(**dict(row))


def _returned_org(row: asyncpg.Record | None) -> OrganizationRecord:
    """The row of an INSERT/UPDATE ... RETURNING on a row the caller has locked or just created."""
    if row is None:
        raise LookupError("the organization row vanished inside its own transaction")
    return OrganizationRecord(**dict(row))


async def insert(conn: asyncpg.Connection, *, id: UUID, name: str, slug: str,
                 signup_user_id: UUID | None = None) -> OrganizationRecord:
    """Raises asyncpg.UniqueViolationError when the slug (or the signup user) is taken."""
    row = await conn.fetchrow(
        "INSERT INTO organization (id, name, slug, signup_user_id) VALUES ($1, $2, $3, $4) "
        "RETURNING id, name, slug, created_at", id, name, slug, signup_user_id)
    return _returned_org(row)


async def get_live(conn: asyncpg.Connection, *, org_id: UUID, for_update: bool = False) -> OrganizationRecord | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        "SELECT id, name, slug, created_at FROM organization WHERE id = $1 AND deleted_at IS NULL" + lock, org_id)
    return _org(row)


async def get_live_with_count(conn: asyncpg.Connection, *, org_id: UUID) -> OrganizationRecord | None:
    row = await conn.fetchrow(
        "SELECT o.id, o.name, o.slug, o.created_at, "
        "       (SELECT count(*) FROM membership m WHERE m.organization_id = o.id)::int AS member_count "
        "FROM organization o WHERE o.id = $1 AND o.deleted_at IS NULL", org_id)
    return _org(row)


async def find_by_signup_user(conn: asyncpg.Connection, *, user_id: UUID) -> OrganizationRecord | None:
    row = await conn.fetchrow(
        "SELECT id, name, slug, created_at FROM organization WHERE signup_user_id = $1", user_id)
    return _org(row)


async def get_signup_user(
        conn: asyncpg.Connection, *, org_id: UUID, for_update: bool = False) -> tuple[bool, UUID | None]:
    """(exists, signup_user_id) for any organization, live or deleted."""
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow("SELECT signup_user_id FROM organization WHERE id = $1" + lock, org_id)
    return (row is not None, row["signup_user_id"] if row else None)


async def update(conn: asyncpg.Connection, *, org_id: UUID, name: str, slug: str) -> OrganizationRecord:
    row = await conn.fetchrow(
        "UPDATE organization SET name = $2, slug = $3, updated_at = clock_timestamp() "
        "WHERE id = $1 AND deleted_at IS NULL RETURNING id, name, slug, created_at", org_id, name, slug)
    return _returned_org(row)


async def soft_delete(conn: asyncpg.Connection, *, org_id: UUID) -> bool:
    status = await conn.execute(
        "UPDATE organization SET deleted_at = clock_timestamp(), updated_at = clock_timestamp() "
        "WHERE id = $1 AND deleted_at IS NULL", org_id)
    return status.endswith(" 1")


async def hard_delete(conn: asyncpg.Connection, *, org_id: UUID) -> bool:
    status = await conn.execute("DELETE FROM organization WHERE id = $1", org_id)
    return status.endswith(" 1")


async def list_for_user(conn: asyncpg.Connection, *, user_id: UUID, after: tuple[datetime, UUID] | None,
                        limit: int) -> list[MyOrganizationRecord]:
    """The user's live organizations, oldest membership first (keyset on joined_at, id)."""
    select = ("SELECT o.id, o.name, o.slug, m.role, m.joined_at "
              "FROM membership m JOIN organization o ON o.id = m.organization_id "
              "WHERE m.user_id = $1 AND o.deleted_at IS NULL ")
    order = "ORDER BY m.joined_at, m.organization_id LIMIT $2"
    rows = await fetch_page(conn, select, order, "AND (m.joined_at, m.organization_id) > ($3, $4) ",
                            [user_id, limit], after)
    return [MyOrganizationRecord(**dict(r)) for r in rows]


@dataclass(frozen=True)
class AdminOrganizationRecord:
    id: UUID
    name: str
    slug: str
    created_at: datetime
    deleted_at: datetime | None
    member_count: int


def _like_pattern(q: str) -> str:
    return "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def list_all(conn: asyncpg.Connection, *, q: str | None, after: tuple[datetime, UUID] | None,
                   limit: int) -> list[AdminOrganizationRecord]:
    """Every organization, deleted ones too, newest first (platform staff: GET /v1/admin/organizations);
    ``q`` matches the name or slug, case-insensitively."""
    select = ("SELECT o.id, o.name, o.slug, o.created_at, o.deleted_at, "
              "       (SELECT count(*) FROM membership m WHERE m.organization_id = o.id)::int AS member_count "
              "FROM organization o WHERE ($2::text IS NULL OR o.name ILIKE $2 OR o.slug ILIKE $2) ")
    order = "ORDER BY o.created_at DESC, o.id DESC LIMIT $1"
    rows = await fetch_page(conn, select, order, "AND (o.created_at, o.id) < ($3, $4) ",
                            [limit, _like_pattern(q) if q else None], after)
    return [AdminOrganizationRecord(**dict(r)) for r in rows]


async def get_any(conn: asyncpg.Connection, *, org_id: UUID) -> AdminOrganizationRecord | None:
    row = await conn.fetchrow(
        "SELECT o.id, o.name, o.slug, o.created_at, o.deleted_at, "
        "       (SELECT count(*) FROM membership m WHERE m.organization_id = o.id)::int AS member_count "
        "FROM organization o WHERE o.id = $1", org_id)
    return None if row is None else AdminOrganizationRecord(**dict(row))
