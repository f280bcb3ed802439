"""HTTP edge of the ticket routes: parse, call the service, answer."""
from __future__ import annotations

import re
from uuid import UUID

from aiohttp import web

from shared.auth import require_permission
from shared.context import request_context, scoped_principal
from shared.pagination import page_json
from shared.permissions import TICKETS_CREATE
from shared.web import json_body_response, json_response, parse_body, parse_query, read_json, validate

from ..keys import TICKET_SERVICE
from .errors import InvalidIdempotencyKey, TicketNotFound
from .schemas import TicketCreate, TicketListQuery, TicketUpdate
from .service import Ticket, check_if_match, etag_of, request_fingerprint

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def ticket_id_of(request: web.Request) -> UUID:
    # A malformed id names no ticket: 404, like any other unknown id.
    try:
        return UUID(request.match_info["ticket_id"])
    except ValueError:
        raise TicketNotFound() from None


def _ticket_response(ticket: Ticket, status: int = 200) -> web.Response:
    return json_response(ticket, status=status, headers={"ETag": etag_of(ticket["version"])})


async def create_ticket(request: web.Request) -> web.Response:
    principal = await require_permission(request, TICKETS_CREATE)
    raw = await read_json(request)
    body = validate(TicketCreate, raw)
    key = request.headers.get(IDEMPOTENCY_KEY_HEADER)
    if key is not None and not _IDEMPOTENCY_KEY.match(key):
        raise InvalidIdempotencyKey()
    created = await request.app[TICKET_SERVICE].create(
        principal, request_context(request), body, idempotency_key=key,
        request_hash=request_fingerprint(raw) if key is not None else None)
    headers = {"ETag": created.etag}
    if created.replayed:
        headers["Idempotent-Replayed"] = "true"
    return web.Response(text=created.body, status=created.status, content_type="application/json", headers=headers)


async def list_tickets(request: web.Request) -> web.Response:
    principal = await scoped_principal(request)
    query = parse_query(request, TicketListQuery)
    items, next_cursor = await request.app[TICKET_SERVICE].list(principal, query)
    return json_body_response(page_json(items, next_cursor))


async def get_ticket(request: web.Request) -> web.Response:
    principal = await scoped_principal(request)
    return _ticket_response(await request.app[TICKET_SERVICE].get(principal, ticket_id_of(request)))


async def update_ticket(request: web.Request) -> web.Response:
    principal = await scoped_principal(request)
    ticket_id = ticket_id_of(request)
    patch = await parse_body(request, TicketUpdate)
    ticket = await request.app[TICKET_SERVICE].update(principal, request_context(request), ticket_id, patch,
                                                      if_match=check_if_match(request.headers.get("If-Match")))
    return _ticket_response(ticket)


async def delete_ticket(request: web.Request) -> web.Response:
    principal = await scoped_principal(request)
    await request.app[TICKET_SERVICE].delete(principal, request_context(request), ticket_id_of(request),
                                             if_match=check_if_match(request.headers.get("If-Match")))
    return web.Response(status=204)


async def restore_ticket(request: web.Request) -> web.Response:
    principal = await scoped_principal(request)
    return _ticket_response(await request.app[TICKET_SERVICE].restore(principal, request_context(request),
                                                                          ticket_id_of(request)))
