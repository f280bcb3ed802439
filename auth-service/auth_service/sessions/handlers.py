from uuid import UUID

from aiohttp import web

from shared.auth import Principal, authenticate
from shared.context import request_context
from shared.errors import ApiKeyNotAllowed, SessionNotFound
from shared.messaging.relay import LAZY_EVENTS
from shared.pagination import PageQuery, page
from shared.web import json_response, parse_body, parse_query

from ..users.schemas import UserOut
from .schemas import LoginRequest, LoginResponse, RefreshRequest, RefreshResponse
from .service import SESSIONS

# Responses carrying tokens must never be cached (RFC 6749 section 5.1).
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


async def current_principal(request: web.Request) -> Principal:
    """The caller: a valid access token whose session is still live."""
    principal = await authenticate(request)
    if principal.api_key_id is not None:
        # The gateway already answers 403 to a key on /v1/auth/*; this holds without it too.
        raise ApiKeyNotAllowed("API keys cannot use the account routes; sign in as a user.")
    await request.app[SESSIONS].ensure_active(principal)
    return principal


async def login(request: web.Request) -> web.Response:
    # A sign-in's event (auth.login_succeeded) is for the audit log alone: it may wait for the
    # relay's next lazy batch, so a flow of sign-ins is published a batch at a time.
    request[LAZY_EVENTS] = True
    body = await parse_body(request, LoginRequest)
    result = await request.app[SESSIONS].login(body, request_context(request))
    out = LoginResponse(user=UserOut(id=result.user.id, email=result.user.email, name=result.user.name,
                                     created_at=result.user.created_at), tokens=result.tokens)
    return json_response(out, headers=NO_STORE)


async def refresh(request: web.Request) -> web.Response:
    body = await parse_body(request, RefreshRequest)
    tokens = await request.app[SESSIONS].refresh(body, request_context(request))
    return json_response(RefreshResponse(tokens=tokens), headers=NO_STORE)


async def logout(request: web.Request) -> web.Response:
    # Only the token's signature is checked here, so a retried logout still answers 204.
    principal = await authenticate(request)
    await request.app[SESSIONS].logout(principal, request_context(request))
    return web.Response(status=204)


async def logout_all(request: web.Request) -> web.Response:
    principal = await current_principal(request)
    await request.app[SESSIONS].logout_all(principal, request_context(request))
    return web.Response(status=204)


async def list_sessions(request: web.Request) -> web.Response:
    principal = await current_principal(request)
    query = parse_query(request, PageQuery)
    items, next_cursor = await request.app[SESSIONS].list_sessions(principal, query)
    return json_response(page([i.model_dump(mode="json") for i in items], next_cursor))


async def delete_session(request: web.Request) -> web.Response:
    principal = await current_principal(request)
    try:
        session_id = UUID(request.match_info["session_id"])
    except ValueError:
        raise SessionNotFound() from None
    await request.app[SESSIONS].revoke(principal, session_id, request_context(request))
    return web.Response(status=204)
