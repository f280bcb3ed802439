"""Authorization of writes against the database, not only the token.

The role in the access token decides reads. A write re-reads the caller's membership inside
its own transaction (with the organization row locked, which also serialises concurrent
membership changes of one organization so the last-owner rule cannot be raced) and acts with
the weaker of the token's role and the stored one: a member removed or demoted a moment ago
cannot use a still-valid token to write during the seconds before the token is refused.
"""
from __future__ import annotations

from uuid import UUID

import asyncpg

from shared.auth import Principal
from shared.errors import MembershipEnded, OrganizationNotFound, PermissionDenied

from .members import repository as members
from .organizations import repository as organizations
from .organizations.repository import OrganizationRecord
from .roles import rank, weaker


async def authorize_write(conn: asyncpg.Connection, principal: Principal, org_id: UUID,
                          minimum_role: str) -> tuple[OrganizationRecord, str]:
    org = await organizations.get_live(conn, org_id=org_id, for_update=True)
    if org is None:
        raise OrganizationNotFound()
    membership = await members.get(conn, organization_id=org_id, user_id=principal.user_id)
    if membership is None:
        raise MembershipEnded()
    role = weaker(principal.role, membership.role)
    if rank(role) < rank(minimum_role):
        raise PermissionDenied()
    return org, role


async def require_live(conn: asyncpg.Connection, org_id: UUID) -> OrganizationRecord:
    """Reads of a deleted organization answer 404 for everyone, whatever the token says."""
    org = await organizations.get_live(conn, org_id=org_id)
    if org is None:
        raise OrganizationNotFound()
    return org
