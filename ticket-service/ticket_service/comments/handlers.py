"""HTTP edge of the comment routes."""
from __future__ import annotations

from aiohttp import web

from shared.auth import require_permission
from shared.context import request_context, scoped_principal
from shared.permissions import COMMENTS_CREATE
from shared.web import json_response, parse_body, parse_query

from ..keys import COMMENT_SERVICE
from ..tickets.handlers import ticket_id_of
from .schemas import CommentCreate, CommentListQuery


async def create_comment(request: web.Request) -> web.Response:
    principal = await require_permission(request, COMMENTS_CREATE)
    ticket_id = ticket_id_of(request)
    body = await parse_body(request, CommentCreate)
    comment = await request.app[COMMENT_SERVICE].create(principal, request_context(request), ticket_id, body)
    return json_response(comment, status=201)


async def list_comments(request: web.Request) -> web.Response:
    principal = await scoped_principal(request)
    ticket_id = ticket_id_of(request)
    query = parse_query(request, CommentListQuery)
    items, next_cursor = await request.app[COMMENT_SERVICE].list(principal, ticket_id, query)
    return json_response({"items": items, "next_cursor": next_cursor})
