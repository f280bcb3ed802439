"""The caller and its request, defined once for every service.

Who calls is ``shared.auth.Principal`` in every process: the verified token (a user with a
session, an API key acting for its organization, or platform staff), with its permissions.
What a use case also needs to know about the request that caused it (its id, the client's
address the gateway vouches for, the user agent) is a ``RequestContext``, built by
``request_context(request)`` and nowhere else; the actor an event records is
``ctx.actor(principal)``. A service takes ``(principal, ctx)``, never a type of its own.
"""
from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from aiohttp import web

from .auth import Principal, authenticate, client_ip
from .errors import OrganizationScopeRequired
from .messaging.envelope import Actor, actor_of
from .web import SETTINGS, request_id_of

USER_AGENT_MAX = 512


@dataclass(frozen=True, slots=True)
class RequestContext:
    request_id: str | None
    ip: str | None
    user_agent: str | None = None

    def actor(self, who: Principal | UUID | None = None) -> Actor:
        """The actor of the events this request causes: the verified caller
        (``shared.messaging.actor_of``), or, on an internal route, the user the platform acts for."""
        if isinstance(who, Principal):
            return actor_of(who, ip=self.ip)
        return actor_of(None, ip=self.ip, user_id=who)


def request_context(request: web.Request) -> RequestContext:
    ua = request.headers.get("User-Agent")
    return RequestContext(request_id=request_id_of(request) or None, ip=client_ip(request, request.app[SETTINGS]),
                          user_agent=ua[:USER_AGENT_MAX] if ua else None)


def organization_id(principal: Principal) -> UUID:
    """The organization the caller's token is scoped to (403 ``organization_scope_required``
    without one)."""
    if principal.tenant_id is None:
        raise OrganizationScopeRequired()
    return principal.tenant_id


async def scoped_principal(request: web.Request) -> Principal:
    """The caller, scoped to an organization (``shared.auth.require_permission`` when a
    permission is needed too)."""
    principal = await authenticate(request)
    organization_id(principal)
    return principal
