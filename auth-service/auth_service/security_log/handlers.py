from aiohttp import web

from shared.pagination import PageQuery, page
from shared.web import json_response, parse_query

from ..sessions.handlers import current_principal
from .service import SECURITY_LOG


async def list_security_events(request: web.Request) -> web.Response:
    principal = await current_principal(request)
    query = parse_query(request, PageQuery)
    items, next_cursor = await request.app[SECURITY_LOG].list(principal, query)
    return json_response(page([i.model_dump(mode="json") for i in items], next_cursor))
