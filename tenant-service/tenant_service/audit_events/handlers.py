"""HTTP edge of the audit log routes."""
from __future__ import annotations

from uuid import UUID

from aiohttp import web

from shared.auth import require_permission
from shared.errors import NotFound
from shared.pagination import page
from shared.permissions import AUDIT_READ
from shared.web import json_response, parse_query

from ..context import org_principal
from ..keys import AUDIT_EVENTS
from .schemas import AuditEventQuery, AuditExportQuery

NDJSON = "application/x-ndjson"


async def list_audit_events(request: web.Request) -> web.Response:
    _, org_id = await org_principal(request, "admin")
    query = parse_query(request, AuditEventQuery)
    items, cursor = await request.app[AUDIT_EVENTS].list(org_id=org_id, query=query)
    return json_response(page(items, cursor))


async def audit_reader(request: web.Request) -> UUID:
    """The organization of an audit route whose caller holds ``audit:read`` for it (any other
    organization id answers 404, as everywhere under /v1/organizations/{org_id})."""
    principal = await require_permission(request, AUDIT_READ)
    try:
        org_id = UUID(request.match_info["org_id"])
    except ValueError:
        raise NotFound("No such organization.") from None
    if principal.tenant_id != org_id:
        raise NotFound("No such organization.")
    return org_id


async def export_audit_events(request: web.Request) -> web.StreamResponse:
    org_id = await audit_reader(request)
    query = parse_query(request, AuditExportQuery)
    chunks = request.app[AUDIT_EVENTS].export(org_id=org_id, query=query)
    first = await anext(chunks, b"")  # a problem (deleted organization) is still answered as one
    response = web.StreamResponse(headers={"Content-Type": NDJSON, "Cache-Control": "no-store"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    if first:
        await response.write(first)
    async for chunk in chunks:
        await response.write(chunk)
    await response.write_eof()
    return response


async def verify_audit_events(request: web.Request) -> web.Response:
    org_id = await audit_reader(request)
    result = await request.app[AUDIT_EVENTS].verify(org_id=org_id)
    return json_response(result.as_json())
