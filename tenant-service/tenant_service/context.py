"""The checks every handler makes before it hands a typed request to a service: the caller
scoped to the organization of the path, path ids, internal calls. (The caller is
shared.auth.Principal and its request a shared.context.RequestContext, as in every service.)"""
from __future__ import annotations

from uuid import UUID

from aiohttp import web

from shared.auth import Principal, authenticate, is_internal
from shared.errors import (
    InternalTokenRequired,
    InvitationNotFound,
    MemberNotFound,
    OrganizationNotFound,
    PermissionMissing,
    ProblemError,
)
from shared.web import SETTINGS

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
