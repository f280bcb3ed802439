"""Custom roles of an organization: named permission sets beside the four built-in ones.

Every change runs under the organization's row lock (access.authorize_write), like membership
changes, so "delete only while nobody holds it" cannot race a grant. A caller never creates or
widens a role beyond its own permissions; changing or deleting a role changes what its holders
may do, so it follows the same rule as granting it (shared.permissions.may_hand_out). A change
of permissions, a rename or a deletion is an event (role.updated, role.deleted) on which
auth-service marks every token carrying the role stale (shared.redis_keys.role_stale).
"""
from __future__ import annotations

import builtins
import uuid
from dataclasses import dataclass
from uuid import UUID, uuid5

import asyncpg

from shared.auth import Principal
from shared.context import RequestContext
from shared.errors import BuiltinRoleImmutable, InvalidCursor, RoleBeyondCaller, RoleInUse, RoleNameTaken, RoleNotFound
from shared.pagination import KeysetCursors
from shared.permissions import BUILTIN_ROLES, CATALOGUE, ROLES_MANAGE

from ..access import authorize_write, require_hand_out, require_live
from ..events import emit
from . import repository
from .schemas import RESERVED_NAMES

_BUILTIN_DESCRIPTIONS = {
    "member": "Built-in: creates tickets and sees, comments on and edits their own.",
    "agent": "Built-in: sees and triages every ticket, writes internal comments.",
    "admin": "Built-in: everything an agent does, plus deleting tickets, members, roles, API keys, the audit "
             "log and the organization's settings.",
    "owner": "Built-in: everything, including deleting the organization and granting admin and owner.",
}


@dataclass(frozen=True)
class Role:
    id: UUID
    name: str
    description: str
    permissions: list[str]
    builtin: bool


def builtin_role_id(org_id: UUID, name: str) -> UUID:
    """Built-in roles have a stable id per organization (so PATCH and DELETE can name them)."""
    return uuid5(org_id, f"builtin-role:{name}")


def _builtins(org_id: UUID) -> list[Role]:
    return [Role(id=builtin_role_id(org_id, name), name=name, description=_BUILTIN_DESCRIPTIONS[name],
                 permissions=sorted(perms), builtin=True) for name, perms in BUILTIN_ROLES.items()]


def _custom(r: repository.CustomRoleRecord) -> Role:
    return Role(id=r.id, name=r.name, description=r.description, permissions=list(r.permissions), builtin=False)


def _role_data(r: repository.CustomRoleRecord) -> dict:
    return {"role_id": str(r.id), "name": r.name, "description": r.description, "permissions": list(r.permissions)}


class RoleService:
    def __init__(self, pool: asyncpg.Pool, *, cursor_secret: str):
        self.pool = pool
        self.cursors = KeysetCursors(cursor_secret, "roles", int)  # (position in the list,)

    @staticmethod
    def catalogue() -> list[tuple[str, str]]:
        return [(p.name, p.description) for p in CATALOGUE]

    async def list(self, *, org_id: UUID, limit: int, cursor: str | None) -> tuple[list[Role], str | None]:
        """Built-in roles first (weakest first), then custom ones oldest first. A role list is
        short and has no order key of its own (built-in roles have no row), so its key is the
        position."""
        cursors = self.cursors.bind(org=org_id)
        after = cursors.after(cursor)
        start = after[0] if after else 0
        if start < 0:
            raise InvalidCursor()
        async with self.pool.acquire() as conn:
            await require_live(conn, org_id)
            custom = await repository.list_for_organization(conn, organization_id=org_id)
        roles = _builtins(org_id) + [_custom(r) for r in custom]
        more = start + limit < len(roles)
        return roles[start:start + limit], cursors.encode([start + limit]) if more else None

    async def _custom_or_refuse(self, conn, org_id: UUID, role_id: UUID) -> repository.CustomRoleRecord:
        found = await repository.get(conn, organization_id=org_id, role_id=role_id, for_update=True)
        if found is not None:
            return found
        if any(role_id == builtin_role_id(org_id, name) for name in BUILTIN_ROLES):
            raise BuiltinRoleImmutable("Built-in roles cannot be changed or deleted.")
        raise RoleNotFound()

    @staticmethod
    def _check_name(name: str) -> None:
        if name.lower() in RESERVED_NAMES:
            raise RoleNameTaken(f"{name!r} is the name of a built-in role.")

    async def create(self, ctx: RequestContext, principal: Principal, *, org_id: UUID, name: str, description: str,
                     permissions: builtins.list[str]) -> Role:
        self._check_name(name)
        async with self.pool.acquire() as conn, conn.transaction():
            _, mine = await authorize_write(conn, principal, org_id, ROLES_MANAGE)
            beyond = sorted(set(permissions) - mine)
            if beyond:
                raise RoleBeyondCaller(f"A role cannot hold permissions you lack: {', '.join(beyond)}.")
            try:
                async with conn.transaction():
                    role = await repository.insert(conn, id=uuid.uuid4(), organization_id=org_id, name=name,
                                                   description=description, permissions=permissions)
            except asyncpg.UniqueViolationError as exc:
                if exc.constraint_name != repository.NAME_INDEX:
                    raise
                raise RoleNameTaken(f"The organization already has a role named {name!r}.") from None
            await emit(conn, ctx, principal, type="role.created", subject_type="role", subject_id=role.id,
                       tenant_id=org_id, data=_role_data(role))
        return _custom(role)

    async def update(self, ctx: RequestContext, principal: Principal, *, org_id: UUID, role_id: UUID, name: str | None,
                     description: str | None, permissions: builtins.list[str] | None) -> Role:
        async with self.pool.acquire() as conn, conn.transaction():
            _, mine = await authorize_write(conn, principal, org_id, ROLES_MANAGE)
            old = await self._custom_or_refuse(conn, org_id, role_id)
            require_hand_out(mine, frozenset(old.permissions),
                             "You may not change this role (it holds permissions you lack, or is admin level "
                             "and you lack admins:manage).")
            if permissions is not None:
                beyond = sorted(set(permissions) - mine)
                if beyond:
                    raise RoleBeyondCaller(f"A role cannot hold permissions you lack: {', '.join(beyond)}.")
                require_hand_out(mine, frozenset(permissions),
                                 "You may not make this role admin level without admins:manage.")
            changes: dict[str, list] = {}
            if name is not None and name != old.name:
                if name.lower() != old.name.lower():
                    self._check_name(name)
                changes["name"] = [old.name, name]
            if description is not None and description != old.description:
                changes["description"] = [old.description, description]
            if permissions is not None and sorted(permissions) != old.permissions:
                changes["permissions"] = [old.permissions, sorted(permissions)]
            if not changes:
                return _custom(old)
            try:
                async with conn.transaction():
                    role = await repository.update(
                        conn, role_id=role_id, name=name if name is not None else old.name,
                        description=description if description is not None else old.description,
                        permissions=sorted(permissions) if permissions is not None else old.permissions)
            except asyncpg.UniqueViolationError as exc:
                if exc.constraint_name != repository.NAME_INDEX:
                    raise
                raise RoleNameTaken(f"The organization already has a role named {name!r}.") from None
            if "name" in changes:
                await repository.rename_holders(conn, organization_id=org_id, old=old.name, new=role.name)
            await emit(conn, ctx, principal, type="role.updated", subject_type="role", subject_id=role.id,
                       tenant_id=org_id, data={**_role_data(role), "changes": changes})
        return _custom(role)

    async def delete(self, ctx: RequestContext, principal: Principal, *, org_id: UUID, role_id: UUID) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            _, mine = await authorize_write(conn, principal, org_id, ROLES_MANAGE)
            old = await self._custom_or_refuse(conn, org_id, role_id)
            require_hand_out(mine, frozenset(old.permissions),
                             "You may not delete this role (it holds permissions you lack, or is admin level "
                             "and you lack admins:manage).")
            held, invited = await repository.count_holders(conn, organization_id=org_id, name=old.name)
            if held or invited:
                raise RoleInUse(f"The role is held by {held} member(s) and named by {invited} pending "
                                "invitation(s); give them another role first.")
            await repository.delete(conn, role_id=role_id)
            await emit(conn, ctx, principal, type="role.deleted", subject_type="role", subject_id=role_id,
                       tenant_id=org_id, data=_role_data(old))
