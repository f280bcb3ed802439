"""HTTP edge of the comment routes."""
from __future__ import annotations

from aiohttp import web

from shared.permissions import COMMENTS_CREATE
from shared.web import json_response, parse_body, parse_query

from ..caller import current_caller
from ..keys import COMMENT_SERVICE
from ..tickets.handlers import ticket_id_of
from .schemas import CommentCreate, CommentListQuery


async def create_comment(request: web.Request) -> web.Response:
    caller = await current_caller(request, COMMENTS_CREATE)
    ticket_id = ticket_id_of(request)
    body = await parse_body(request, CommentCreate)
    comment = await request.app[COMMENT_SERVICE].create(caller, ticket_id, body)
    return json_response(comment, status=201)


async def list_comments(request: web.Request) -> web.Response:
    caller = await current_caller(request)
    ticket_id = ticket_id_of(request)
    query = parse_query(request, CommentListQuery)
    items, next_cursor = await request.app[COMMENT_SERVICE].list(caller, ticket_id, query)
    return json_response({"items": items, "next_cursor": next_cursor})
