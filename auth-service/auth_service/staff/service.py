"""Platform staff: granted and revoked only from the command line (staff/cli.py), never over
HTTP. Staff list every organization and obtain a read-only access token for one of them; each
grant is a ``staff.access_granted`` event in that organization's audit log.

The staff token is scoped like any other (``tid`` set explicitly), so ticket and audit reads
pass the same row-level security as everyone's; its permissions are STAFF_PERMISSIONS (reads
only) and every write is refused by ``shared.auth.authenticate`` and the gateway. Revoking
staff raises ``rv:st:{user}``: the gateway refuses every staff token issued before it at the
next request.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import redis.asyncio as aioredis
from aiohttp import web

from shared import redis_keys
from shared.admin import AdminOrganizationQuery
from shared.auth import Principal
from shared.context import RequestContext
from shared.errors import OrganizationNotFound, StaffOnly
from shared.messaging import Actor, add_event
from shared.permissions import STAFF_PERMISSIONS, STAFF_ROLE

from ..config import Settings
from ..revocation import Revocations, db_clock_ms
from ..tenants.client import TenantClient
from ..tokens.service import AccessTokenIssuer
from ..users import repository as users_repo
from . import repository as repo
from .schemas import StaffAccessRequest, StaffTokensOut


async def mark_staff_revoked(conn: asyncpg.Connection, redis: aioredis.Redis, settings: Settings,
                             user_id: UUID) -> None:
    """Every staff token of this user issued until now is stale at the gateway. Recorded with
    the other revocation marks (auth_service.revocation), so a Redis that lost it gets it back."""
    revocations = Revocations(redis, ttl_s=settings.staff_access_ttl_s + settings.jwt_leeway_s)
    await revocations.put(conn, [revocations.stale_mark(redis_keys.staff_stale(user_id), await db_clock_ms(conn))])


class StaffService:
    def __init__(self, *, pool: asyncpg.Pool, settings: Settings, tenant: TenantClient, issuer: AccessTokenIssuer):
        self.pool, self.settings, self.tenant, self.issuer = pool, settings, tenant, issuer

    async def require_staff(self, principal: Principal) -> None:
        """The caller's account is staff now (read from the database on every call, so a revoked
        grant is refused at once). An API key or a staff-access token is never staff itself."""
        if principal.api_key_id is None and not principal.staff:
            async with self.pool.acquire() as conn:
                if await repo.is_staff(conn, user_id=principal.user_id):
                    return
        raise StaffOnly("Only platform staff may use this route.")

    async def organizations(self, principal: Principal, query: AdminOrganizationQuery,
                            info: RequestContext) -> dict[str, Any]:
        await self.require_staff(principal)
        return await self.tenant.list_organizations(q=query.q, limit=query.limit, cursor=query.cursor,
                                                    request_id=info.request_id)

    async def grant_access(self, principal: Principal, body: StaffAccessRequest,
                           info: RequestContext) -> StaffTokensOut:
        await self.require_staff(principal)
        org = await self.tenant.organization(body.organization_id, request_id=info.request_id)
        if org is None or org.get("deleted_at"):
            raise OrganizationNotFound()
        ttl = self.settings.staff_access_ttl_s
        expires_at = datetime.now(UTC) + timedelta(seconds=ttl)
        async with self.pool.acquire() as conn, conn.transaction():
            # Staff is checked again inside the transaction that records the grant.
            if not await repo.is_staff(conn, user_id=principal.user_id):
                raise StaffOnly("Only platform staff may use this route.")
            await add_event(conn, source=self.settings.service_name, type="staff.access_granted",
                            subject_type="organization", subject_id=body.organization_id,
                            tenant_id=body.organization_id,
                            actor=Actor(user_id=principal.user_id, ip=info.ip, staff=True),
                            request_id=info.request_id,
                            data={"staff_user_id": str(principal.user_id), "organization_id": str(body.organization_id),
                                  "reason": body.reason, "role": STAFF_ROLE,
                                  "permissions": sorted(STAFF_PERMISSIONS), "expires_at": expires_at.isoformat()})
        # The staff member's own session is the token's session: logging out ends it too.
        token = self.issuer.mint_scoped(subject=principal.user_id, session_id=principal.session_id,
                                        organization_id=body.organization_id, role=STAFF_ROLE,
                                        permissions=STAFF_PERMISSIONS, ttl_s=ttl, extra={"staff": True})
        return StaffTokensOut(access_token=token, expires_in=ttl)


# ---------------------------------------------------------------- the command line's side

async def grant(conn: asyncpg.Connection, email: str) -> bool:
    user = await users_repo.get_by_email(conn, email=email)
    if user is None:
        raise LookupError(email)
    return await repo.grant(conn, user_id=user.id, now=datetime.now(UTC))


async def revoke(conn: asyncpg.Connection, redis: aioredis.Redis, settings: Settings, email: str) -> bool:
    user = await users_repo.get_by_email(conn, email=email)
    if user is None:
        raise LookupError(email)
    async with conn.transaction():
        removed = await repo.revoke(conn, user_id=user.id)
        # Before the commit: if Redis does not answer, the grant stays (and the command fails)
        # rather than being gone while tokens already issued keep working.
        await mark_staff_revoked(conn, redis, settings, user.id)  # 503 (rolled back) without Redis
    return removed


STAFF = web.AppKey("staff", StaffService)
