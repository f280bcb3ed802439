"""Authorization against permissions (shared.permissions), checked on the token and, for
writes, on the database.

The permissions in the access token decide reads. A write re-reads the caller's membership
inside its own transaction (with the organization row locked, which also serialises
concurrent membership and role changes of one organization so the last-owner rule and the
"never delete a held role" rule cannot be raced) and acts with the permissions both the token
and the stored role grant: a member removed, demoted or whose role was narrowed a moment ago
cannot use a still-valid token to write during the seconds before the token is refused.
"""
from __future__ import annotations

from uuid import UUID

import asyncpg

from shared.auth import Principal
from shared.errors import (
    FieldError,
    MembershipEnded,
    OrganizationNotFound,
    PermissionMissing,
    RoleBeyondCaller,
    ValidationFailed,
)
from shared.permissions import BUILTIN_ROLES, may_hand_out

from .members import repository as members
from .organizations import repository as organizations
from .organizations.repository import OrganizationRecord
from .roles import repository as roles


async def role_permissions(conn: asyncpg.Connection, org_id: UUID, role: str) -> frozenset[str] | None:
    """The permission set a stored role name stands for (None when no such role exists)."""
    builtin = BUILTIN_ROLES.get(role)
    if builtin is not None:
        return builtin
    perms = await roles.permissions_of(conn, organization_id=org_id, name=role)
    return None if perms is None else frozenset(perms)


async def resolve_role(conn: asyncpg.Connection, org_id: UUID, name: str) -> tuple[str, frozenset[str]]:
    """A role name a client sent (built-in or custom, custom names in any letter case): its
    stored spelling and permissions; 422 on field ``role`` when the organization has no such role."""
    if name in BUILTIN_ROLES:
        return name, BUILTIN_ROLES[name]
    found = await roles.find_by_name(conn, organization_id=org_id, name=name)
    if found is None:
        raise ValidationFailed("The request has invalid fields.", errors=[
            FieldError("role", "no built-in or custom role of this organization has this name")])
    return found.name, frozenset(found.permissions)


def require_hand_out(actor: frozenset[str], role: frozenset[str], detail: str) -> None:
    if not may_hand_out(actor, role):
        raise RoleBeyondCaller(detail)


async def authorize_write(conn: asyncpg.Connection, principal: Principal, org_id: UUID,
                          permission: str | None) -> tuple[OrganizationRecord, frozenset[str]]:
    """Locks the organization; returns it with the caller's effective permissions (token's and
    stored role's). ``permission`` None: any member (leaving)."""
    org = await organizations.get_live(conn, org_id=org_id, for_update=True)
    if org is None:
        raise OrganizationNotFound()
    membership = await members.get(conn, organization_id=org_id, user_id=principal.user_id)
    if membership is None:
        raise MembershipEnded()
    stored = await role_permissions(conn, org_id, membership.role) or frozenset()
    effective = principal.permissions & stored
    if permission is not None and permission not in effective:
        raise PermissionMissing(f"This action needs the permission '{permission}'.")
    return org, effective


async def require_live(conn: asyncpg.Connection, org_id: UUID) -> OrganizationRecord:
    """Reads of a deleted organization answer 404 for everyone, whatever the token says."""
    org = await organizations.get_live(conn, org_id=org_id)
    if org is None:
        raise OrganizationNotFound()
    return org
