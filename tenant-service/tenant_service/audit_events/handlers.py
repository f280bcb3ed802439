"""HTTP edge of the audit log routes."""
from __future__ import annotations

import logging
from uuid import UUID

from aiohttp import web

from shared.auth import require_permission
from shared.errors import OrganizationNotFound
from shared.pagination import page
from shared.permissions import AUDIT_READ
from shared.web import REQUEST_ID_HEADER, json_response, parse_query, request_id_of

from ..context import org_principal
from ..keys import AUDIT_EVENTS
from .schemas import AuditEventQuery, AuditExportQuery

NDJSON = "application/x-ndjson"

log = logging.getLogger("tenant_service.audit_events")


async def list_audit_events(request: web.Request) -> web.Response:
    _, org_id = await org_principal(request, AUDIT_READ)
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
        raise OrganizationNotFound() from None
    if principal.tenant_id != org_id:
        raise OrganizationNotFound()
    return org_id


async def export_audit_events(request: web.Request) -> web.StreamResponse:
    org_id = await audit_reader(request)
    query = parse_query(request, AuditExportQuery)
    chunks = request.app[AUDIT_EVENTS].export(org_id=org_id, query=query)
    try:
        first = await anext(chunks, b"")  # a problem (deleted organization) is still answered as one
        response = web.StreamResponse(headers={"Content-Type": NDJSON, "Cache-Control": "no-store",
                                               REQUEST_ID_HEADER: request_id_of(request)})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            if first:
                await response.write(first)
            async for chunk in chunks:
                await response.write(chunk)
        except ConnectionResetError:
            return response  # the client went away
        except Exception as exc:
            # The 200 is sent: the only honest signal left is to cut the connection before the
            # terminating chunk, so the client sees a truncated body, never a complete-looking one.
            log.warning("audit export interrupted", extra={"request_id": request_id_of(request),
                                                           "error": type(exc).__name__})
            if request.transport is not None:
                request.transport.abort()
            return response
        await response.write_eof()
        return response
    finally:
        await chunks.aclose()


async def verify_audit_events(request: web.Request) -> web.Response:
    org_id = await audit_reader(request)
    result = await request.app[AUDIT_EVENTS].verify(org_id=org_id)
    return json_response(result.as_json())
