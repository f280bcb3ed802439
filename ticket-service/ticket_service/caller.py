"""Who is calling, as the services need it: the verified principal (with its permissions,
shared.permissions) plus the request's address and id for the events it causes."""
from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from aiohttp import web

from shared.auth import Principal, authenticate, client_ip, require_permission
from shared.errors import OrganizationScopeRequired
from shared.messaging import Actor, actor_of
from shared.permissions import TICKETS_READ_ALL, TICKETS_READ_OWN
from shared.web import SETTINGS, request_id_of


@dataclass(frozen=True)
class Caller:
    user_id: UUID
    org_id: UUID
    role: str
    ip: str | None
    request_id: str | None
    actor: Actor  # the envelope's actor of the events this caller causes (shared.messaging.actor_of)
    permissions: frozenset[str] = frozenset()

    def can(self, permission: str) -> bool:
        return permission in self.permissions

    def sees(self, requester_id: UUID) -> bool:
        """Every ticket with tickets:read_all; one's own with tickets:read_own."""
        return self.can(TICKETS_READ_ALL) or (self.can(TICKETS_READ_OWN) and requester_id == self.user_id)


async def current_caller(request: web.Request, permission: str | None = None) -> Caller:
    """403 for a token without an organization or without ``permission`` (shared.auth)."""
    principal = await require_permission(request, permission) if permission else await _scoped(request)
    org_id = principal.tenant_id
    if org_id is None:  # pragma: no cover - both calls above already refuse a token without one
        raise OrganizationScopeRequired()
    ip = client_ip(request, request.app[SETTINGS])
    return Caller(user_id=principal.user_id, org_id=org_id, role=principal.role or "",
                  ip=ip, request_id=request_id_of(request) or None, actor=actor_of(principal, ip=ip),
                  permissions=principal.permissions)


async def _scoped(request: web.Request) -> Principal:
    principal = await authenticate(request)
    if principal.tenant_id is None:
        raise OrganizationScopeRequired()
    return principal
