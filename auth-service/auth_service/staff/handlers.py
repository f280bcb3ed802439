from aiohttp import web

from shared.admin import AdminOrganizationQuery
from shared.context import request_context
from shared.web import json_response, parse_body, parse_query

from ..sessions.handlers import NO_STORE, current_principal
from .schemas import StaffAccessRequest, StaffAccessResponse
from .service import STAFF


async def organizations(request: web.Request) -> web.Response:
    principal = await current_principal(request)
    query = parse_query(request, AdminOrganizationQuery)
    return json_response(await request.app[STAFF].organizations(principal, query, request_context(request)))


async def access(request: web.Request) -> web.Response:
    principal = await current_principal(request)
    body = await parse_body(request, StaffAccessRequest)
    tokens = await request.app[STAFF].grant_access(principal, body, request_context(request))
    return json_response(StaffAccessResponse(tokens=tokens), status=201, headers=NO_STORE)
