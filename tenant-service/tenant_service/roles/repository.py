"""SQL for custom roles. A membership or invitation names its role; a custom role's name is
stored exactly as the role spells it, so holders are found by equality."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

NAME_INDEX = "custom_role_org_name_key"


@dataclass(frozen=True)
class CustomRoleRecord:
    id: UUID
    organization_id: UUID
    name: str
    description: str
    permissions: list[str]
    created_at: datetime
    updated_at: datetime


_COLS = "id, organization_id, name, description, permissions, created_at, updated_at"


def _record(row) -> CustomRoleRecord:
    d = dict(row)
    d["permissions"] = sorted(d["permissions"])
    return CustomRoleRecord(**d)


async def list_for_organization(conn: asyncpg.Connection, *, organization_id: UUID) -> list[CustomRoleRecord]:
    rows = await conn.fetch(f"SELECT {_COLS} FROM custom_role WHERE organization_id = $1 ORDER BY created_at, id",
                            organization_id)
    return [_record(r) for r in rows]


async def get(conn: asyncpg.Connection, *, organization_id: UUID, role_id: UUID,
              for_update: bool = False) -> CustomRoleRecord | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(f"SELECT {_COLS} FROM custom_role WHERE organization_id = $1 AND id = $2{lock}",
                              organization_id, role_id)
    return None if row is None else _record(row)


async def find_by_name(conn: asyncpg.Connection, *, organization_id: UUID, name: str) -> CustomRoleRecord | None:
    """Case-insensitive, like the uniqueness of names."""
    row = await conn.fetchrow(
        f"SELECT {_COLS} FROM custom_role WHERE organization_id = $1 AND lower(name) = lower($2)",
        organization_id, name)
    return None if row is None else _record(row)


async def insert(conn: asyncpg.Connection, *, id: UUID, organization_id: UUID, name: str, description: str,
                 permissions: list[str]) -> CustomRoleRecord:
    """Raises asyncpg.UniqueViolationError (NAME_INDEX) when the name is taken."""
    row = await conn.fetchrow(
        f"INSERT INTO custom_role (id, organization_id, name, description, permissions) "
        f"VALUES ($1, $2, $3, $4, $5) RETURNING {_COLS}", id, organization_id, name, description, permissions)
    return _record(row)


async def update(conn: asyncpg.Connection, *, role_id: UUID, name: str, description: str,
                 permissions: list[str]) -> CustomRoleRecord:
    row = await conn.fetchrow(
        f"UPDATE custom_role SET name = $2, description = $3, permissions = $4, updated_at = clock_timestamp() "
        f"WHERE id = $1 RETURNING {_COLS}", role_id, name, description, permissions)
    return _record(row)


async def rename_holders(conn: asyncpg.Connection, *, organization_id: UUID, old: str, new: str) -> None:
    await conn.execute("UPDATE membership SET role = $3 WHERE organization_id = $1 AND role = $2",
                       organization_id, old, new)
    await conn.execute("UPDATE invitation SET role = $3 WHERE organization_id = $1 AND role = $2 "
                       "AND accepted_at IS NULL AND revoked_at IS NULL", organization_id, old, new)


async def count_holders(conn: asyncpg.Connection, *, organization_id: UUID, name: str) -> tuple[int, int]:
    """(members holding the role, pending invitations naming it)."""
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM membership WHERE organization_id = $1 AND role = $2) AS members, "
        "(SELECT count(*) FROM invitation WHERE organization_id = $1 AND role = $2 AND accepted_at IS NULL "
        " AND revoked_at IS NULL AND expires_at > now()) AS invitations", organization_id, name)
    return row["members"], row["invitations"]


async def delete(conn: asyncpg.Connection, *, role_id: UUID) -> None:
    await conn.execute("DELETE FROM custom_role WHERE id = $1", role_id)


async def permissions_of(conn: asyncpg.Connection, *, organization_id: UUID, name: str) -> list[str] | None:
    return await conn.fetchval("SELECT permissions FROM custom_role WHERE organization_id = $1 AND name = $2",
                               organization_id, name)
