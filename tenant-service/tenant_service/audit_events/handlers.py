"""HTTP edge of the audit log route."""
from __future__ import annotations

from aiohttp import web

from shared.pagination import page
from shared.web import json_response, parse_query

from shared.permissions import AUDIT_READ

from ..context import org_principal
from ..keys import AUDIT_EVENTS
from .schemas import AuditEventQuery


async def list_audit_events(request: web.Request) -> web.Response:
    _, org_id = await org_principal(request, AUDIT_READ)
    query = parse_query(request, AuditEventQuery)
    items, cursor = await request.app[AUDIT_EVENTS].list(org_id=org_id, query=query)
    return json_response(page(items, cursor))
