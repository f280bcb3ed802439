from uuid import UUID

from aiohttp import web

from shared.auth import Principal, authenticate, is_internal
from shared.context import request_context
from shared.errors import (
    ApiKeyNotAllowed,
    ApiKeyNotFound,
    InternalTokenRequired,
    OrganizationNotFound,
    PermissionMissing,
)
from shared.pagination import PageQuery, page
from shared.permissions import API_KEYS_MANAGE
from shared.web import SETTINGS, json_response, parse_body, parse_query

from ..sessions.handlers import NO_STORE
from ..sessions.service import SESSIONS
from .schemas import ApiKeyCreate, ResolveRequest, ResolveResponse, UsageReport
from .service import API_KEYS


def _uuid(request: web.Request, name: str, what: str) -> UUID:
    try:
        return UUID(request.match_info[name])
    except ValueError:
        raise (OrganizationNotFound if what == "organization" else ApiKeyNotFound)() from None


async def _manager(request: web.Request) -> tuple[Principal, UUID]:
    """A signed-in user of this organization holding ``api_keys:manage``: another organization
    is 404 (existence never leaks), a missing permission 403. Keys do not manage keys: every
    key traces back to the person who made it."""
    principal = await authenticate(request)
    org_id = _uuid(request, "org_id", "organization")
    if principal.tenant_id != org_id:
        raise OrganizationNotFound()
    if principal.api_key_id is not None:
        raise ApiKeyNotAllowed("API keys cannot manage API keys; sign in as a user.")
    await request.app[SESSIONS].ensure_active(principal)
    if not principal.has_permission(API_KEYS_MANAGE):
        raise PermissionMissing(f"This action needs the permission '{API_KEYS_MANAGE}'.")
    return principal, org_id


async def create(request: web.Request) -> web.Response:
    principal, org_id = await _manager(request)
    body = await parse_body(request, ApiKeyCreate)
    created = await request.app[API_KEYS].create(principal, org_id, body, request_context(request))
    return json_response(created, status=201, headers=NO_STORE)


async def list_keys(request: web.Request) -> web.Response:
    _, org_id = await _manager(request)
    query = parse_query(request, PageQuery)
    items, cursor = await request.app[API_KEYS].list(org_id, query)
    return json_response(page([i.model_dump(mode="json") for i in items], cursor))


async def revoke(request: web.Request) -> web.Response:
    principal, org_id = await _manager(request)
    key_id = _uuid(request, "key_id", "API key")
    await request.app[API_KEYS].revoke(principal, org_id, key_id, request_context(request))
    return web.Response(status=204)


# ---------------------------------------------------------------- internal (the gateway)

def _require_internal(request: web.Request) -> None:
    if not is_internal(request, request.app[SETTINGS]):
        raise InternalTokenRequired()


async def resolve(request: web.Request) -> web.Response:
    _require_internal(request)
    body = await parse_body(request, ResolveRequest)
    token, ttl = await request.app[API_KEYS].resolve(body.key)
    return json_response(ResolveResponse(access_token=token, expires_in=ttl), headers=NO_STORE)


async def usage(request: web.Request) -> web.Response:
    _require_internal(request)
    body = await parse_body(request, UsageReport)
    await request.app[API_KEYS].record_usage(body)
    return web.Response(status=204)
