from uuid import UUID

from aiohttp import web

from shared.auth import is_internal
from shared.context import request_context
from shared.errors import InternalTokenRequired, UserNotFound
from shared.web import SETTINGS, json_response, parse_body

from ..sessions.handlers import NO_STORE, current_principal
from .schemas import InternalUserOut, OrganizationOut, PasswordChangeRequest, SignupRequest, SignupResponse, UserOut
from .service import USERS


async def signup(request: web.Request) -> web.Response:
    body = await parse_body(request, SignupRequest)
    result = await request.app[USERS].signup(body, request_context(request))
    org = result.organization
    out = SignupResponse(
        user=UserOut(id=result.user.id, email=result.user.email, name=result.user.name,
                     created_at=result.user.created_at),
        organization=(OrganizationOut(id=org.id, name=org.name, slug=org.slug, created_at=org.created_at)
                      if org else None),
        tokens=result.tokens)
    return json_response(out, status=201, headers=NO_STORE)


async def me(request: web.Request) -> web.Response:
    principal = await current_principal(request)
    return json_response(await request.app[USERS].me(principal))


async def change_password(request: web.Request) -> web.Response:
    principal = await current_principal(request)
    body = await parse_body(request, PasswordChangeRequest)
    await request.app[USERS].change_password(principal, body, request_context(request))
    return web.Response(status=204)


async def internal_user(request: web.Request) -> web.Response:
    """``GET /internal/users/{user_id}`` (shared/README.md "Internal routes"): the account's
    profile, for a service that has not yet received its ``user.registered``."""
    if not is_internal(request, request.app[SETTINGS]):
        raise InternalTokenRequired()
    try:
        user_id = UUID(request.match_info["user_id"])
    except ValueError:
        raise UserNotFound() from None
    user = await request.app[USERS].profile(user_id)
    if user is None:
        raise UserNotFound()
    return json_response(InternalUserOut(id=user.id, email=user.email, name=user.name, created_at=user.created_at))
