"""Who is calling, as the services need it: the verified principal plus the request's
address and id for the events it causes."""
from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from aiohttp import web

from shared.auth import ROLE_RANK, client_ip, require_tenant
from shared.messaging import Actor, actor_of
from shared.web import SETTINGS, request_id_of


@dataclass(frozen=True)
class Caller:
    user_id: UUID
    org_id: UUID
    role: str
    ip: str | None
    request_id: str | None
    actor: Actor  # the envelope's actor of the events this caller causes (shared.messaging.actor_of)

    def at_least(self, role: str) -> bool:
        return ROLE_RANK.get(self.role, 0) >= ROLE_RANK[role]

    @property
    def is_agent(self) -> bool:
        return self.at_least("agent")


async def current_caller(request: web.Request, minimum_role: str = "member") -> Caller:
    """403 for a token without an organization or with too low a role (shared.auth)."""
    principal = await require_tenant(request, minimum_role)
    ip = client_ip(request, request.app[SETTINGS])
    return Caller(user_id=principal.user_id, org_id=principal.tenant_id, role=principal.role or "member",
                  ip=ip, request_id=request_id_of(request) or None, actor=actor_of(principal, ip=ip))
