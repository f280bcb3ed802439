"""Who is calling and on whose behalf: the pieces every handler needs before it hands a typed
request to a service (the scoped principal, and the actor recorded in events)."""
from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from aiohttp import web

from shared.auth import Principal, authenticate, client_ip, is_internal
from shared.errors import (InternalTokenRequired, InvitationNotFound, MemberNotFound, OrganizationNotFound,
                           PermissionDenied, ProblemError)
from shared.web import SETTINGS, request_id_of


@dataclass(frozen=True)
class Actor:
    """Recorded in every event a request causes."""
    user_id: UUID | None
    ip: str | None
    request_id: str | None


def actor_of(request: web.Request, user_id: UUID | None) -> Actor:
    return Actor(user_id=user_id, ip=client_ip(request, request.app[SETTINGS]),
                 request_id=request_id_of(request) or None)


_NOT_FOUND: dict[str, type[ProblemError]] = {"user_id": MemberNotFound, "invitation_id": InvitationNotFound,
                                              "org_id": OrganizationNotFound}


def path_uuid(request: web.Request, name: str) -> UUID:
    """A path id that is not a UUID names nothing that exists: 404, like any unknown id."""
    try:
        return UUID(request.match_info[name])
    except ValueError:
        raise _NOT_FOUND.get(name, MemberNotFound)() from None


async def org_principal(request: web.Request, minimum_role: str = "member") -> tuple[Principal, UUID]:
    """The caller of an ``/v1/organizations/{org_id}/...`` route.

    The token must be scoped (``tid``) to that organization. Any other organization id, or a
    token without ``tid``, answers 404 so that existence never leaks; only then is the role
    checked (403)."""
    principal = await authenticate(request)
    try:
        org_id = UUID(request.match_info["org_id"])
    except ValueError:
        raise OrganizationNotFound() from None
    if principal.tenant_id != org_id:
        raise OrganizationNotFound()
    if not principal.has_role(minimum_role):
        raise PermissionDenied()
    return principal, org_id


def require_internal(request: web.Request) -> None:
    if not is_internal(request, request.app[SETTINGS]):
        raise InternalTokenRequired()
