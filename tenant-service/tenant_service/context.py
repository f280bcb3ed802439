"""Who is calling and on whose behalf: the pieces every handler needs before it hands a typed
request to a service (the scoped principal, and the actor recorded in events)."""
from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from aiohttp import web

from shared.auth import Principal, authenticate, client_ip, is_internal
from shared.errors import (
    InternalTokenRequired,
    InvitationNotFound,
    MemberNotFound,
    OrganizationNotFound,
    PermissionMissing,
    ProblemError,
)
from shared.messaging import Actor as EventActor
from shared.messaging import actor_of as event_actor_of
from shared.web import SETTINGS, request_id_of


@dataclass(frozen=True)
class Actor:
    """Recorded in every event a request causes: the envelope's actor (built from the verified
    caller by shared.messaging.actor_of) and the request id."""
    event: EventActor
    request_id: str | None

    @property
    def user_id(self) -> UUID | None:
        return self.event.user_id


def actor_of(request: web.Request, who: Principal | UUID | None) -> Actor:
    """``who``: the verified caller, or (internal routes) the user the platform acts for."""
    ip = client_ip(request, request.app[SETTINGS])
    if isinstance(who, Principal):
        event = event_actor_of(who, ip=ip)
    else:
        event = event_actor_of(None, ip=ip, user_id=who)
    return Actor(event=event, request_id=request_id_of(request) or None)


_NOT_FOUND: dict[str, type[ProblemError]] = {"user_id": MemberNotFound, "invitation_id": InvitationNotFound,
                                              "org_id": OrganizationNotFound}


def path_uuid(request: web.Request, name: str) -> UUID:
    """A path id that is not a UUID names nothing that exists: 404, like any unknown id."""
    try:
        return UUID(request.match_info[name])
    except ValueError:
        raise _NOT_FOUND.get(name, MemberNotFound)() from None


async def org_principal(request: web.Request, permission: str | None = None) -> tuple[Principal, UUID]:
    """The caller of an ``/v1/organizations/{org_id}/...`` route.

    The token must be scoped (``tid``) to that organization. Any other organization id, or a
    token without ``tid``, answers 404 so that existence never leaks; only then is the permission
    checked: the token's permissions must include ``permission`` (403)."""
    principal = await authenticate(request)
    try:
        org_id = UUID(request.match_info["org_id"])
    except ValueError:
        raise OrganizationNotFound() from None
    if principal.tenant_id != org_id:
        raise OrganizationNotFound()
    if permission is not None and not principal.has_permission(permission):
        raise PermissionMissing(f"This action needs the permission '{permission}'.")
    return principal, org_id


def require_internal(request: web.Request) -> None:
    if not is_internal(request, request.app[SETTINGS]):
        raise InternalTokenRequired()
