"""SQL for memberships."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from shared.permissions import BUILTIN_ROLES, OWNER_ROLE

from ..paging import fetch_page


@dataclass(frozen=True)
class MembershipRecord:
    organization_id: UUID
    user_id: UUID
    role: str
    joined_at: datetime


@dataclass(frozen=True)
class MembershipPermissions:
    organization_id: UUID
    role: str
    permissions: frozenset[str]
    joined_at: datetime


@dataclass(frozen=True)
class MemberRecord:
    user_id: UUID
    email: str | None
    name: str | None
    role: str
    joined_at: datetime


_COLS = "organization_id, user_id, role, joined_at"


async def insert(conn: asyncpg.Connection, *, organization_id: UUID, user_id: UUID, role: str) -> MembershipRecord:
    """Raises asyncpg.UniqueViolationError when the user is already a member."""
    row = await conn.fetchrow(
        f"INSERT INTO membership (organization_id, user_id, role) VALUES ($1, $2, $3) RETURNING {_COLS}",
        organization_id, user_id, role)
    return MembershipRecord(**dict(row))


async def get(conn: asyncpg.Connection, *, organization_id: UUID, user_id: UUID) -> MembershipRecord | None:
    row = await conn.fetchrow(f"SELECT {_COLS} FROM membership WHERE organization_id = $1 AND user_id = $2",
                              organization_id, user_id)
    return None if row is None else MembershipRecord(**dict(row))


async def get_member(conn: asyncpg.Connection, *, organization_id: UUID, user_id: UUID) -> MemberRecord | None:
    row = await conn.fetchrow(
        "SELECT m.user_id, p.email, p.name, m.role, m.joined_at FROM membership m "
        "LEFT JOIN user_profile p ON p.user_id = m.user_id WHERE m.organization_id = $1 AND m.user_id = $2",
        organization_id, user_id)
    return None if row is None else MemberRecord(**dict(row))


async def list_members(conn: asyncpg.Connection, *, organization_id: UUID, after: tuple[datetime, UUID] | None,
                       limit: int) -> list[MemberRecord]:
    select = ("SELECT m.user_id, p.email, p.name, m.role, m.joined_at FROM membership m "
              "LEFT JOIN user_profile p ON p.user_id = m.user_id WHERE m.organization_id = $1 ")
    order = "ORDER BY m.joined_at, m.user_id LIMIT $2"
    rows = await fetch_page(conn, select, order, "AND (m.joined_at, m.user_id) > ($3, $4) ",
                            [organization_id, limit], after)
    return [MemberRecord(**dict(r)) for r in rows]


async def list_for_user(conn: asyncpg.Connection, *, user_id: UUID) -> list[MembershipPermissions]:
    """Every live organization of the user, oldest membership first, with what its role grants
    (a built-in role's fixed set, else the custom role's stored one)."""
    rows = await conn.fetch(
        "SELECT m.organization_id, m.role, m.joined_at, r.permissions FROM membership m "
        "JOIN organization o ON o.id = m.organization_id "
        "LEFT JOIN custom_role r ON r.organization_id = m.organization_id AND r.name = m.role "
        "WHERE m.user_id = $1 AND o.deleted_at IS NULL ORDER BY m.joined_at, m.organization_id", user_id)
    return [MembershipPermissions(organization_id=r["organization_id"], role=r["role"], joined_at=r["joined_at"],
                                  permissions=BUILTIN_ROLES.get(r["role"]) or frozenset(r["permissions"] or ()))
            for r in rows]


async def count(conn: asyncpg.Connection, *, organization_id: UUID) -> int:
    return await conn.fetchval("SELECT count(*) FROM membership WHERE organization_id = $1", organization_id)


async def count_owners(conn: asyncpg.Connection, *, organization_id: UUID) -> int:
    return await conn.fetchval(
        "SELECT count(*) FROM membership WHERE organization_id = $1 AND role = $2", organization_id, OWNER_ROLE)


async def set_role(conn: asyncpg.Connection, *, organization_id: UUID, user_id: UUID, role: str) -> None:
    await conn.execute("UPDATE membership SET role = $3 WHERE organization_id = $1 AND user_id = $2",
                       organization_id, user_id, role)


async def delete(conn: asyncpg.Connection, *, organization_id: UUID, user_id: UUID) -> None:
    await conn.execute("DELETE FROM membership WHERE organization_id = $1 AND user_id = $2",
                       organization_id, user_id)
