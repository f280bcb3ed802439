"""Who may comment and who sees which comments."""
from __future__ import annotations

import uuid
from datetime import datetime
from uuid import UUID

import asyncpg

from shared.db import tenant_transaction
from shared.messaging import add_event
from shared.pagination import CursorCodec
from shared.permissions import COMMENTS_INTERNAL

from ..caller import Caller
from ..tickets import repository as tickets
from ..tickets.errors import InvalidCursor, TicketNotFound
from ..tickets.service import SOURCE
from . import repository as repo
from .errors import InternalCommentForbidden
from .schemas import CommentCreate, CommentListQuery, CommentOut


class CommentService:
    def __init__(self, pool: asyncpg.Pool, *, cursor_secret: str):
        self.pool = pool
        self.cursors = CursorCodec(cursor_secret, "ticket-comments")

    async def _visible_ticket(self, conn, caller: Caller, ticket_id: UUID) -> tickets.TicketRow:
        row = await tickets.get_ticket(conn, ticket_id=ticket_id)
        if row is None or not caller.sees(row.requester_id):
            raise TicketNotFound()
        return row

    async def create(self, caller: Caller, ticket_id: UUID, body: CommentCreate) -> CommentOut:
        if body.internal and not caller.can(COMMENTS_INTERNAL):
            raise InternalCommentForbidden()
        async with tenant_transaction(self.pool, caller.org_id) as conn:
            await self._visible_ticket(conn, caller, ticket_id)
            comment = await repo.insert_comment(conn, id=uuid.uuid4(), org_id=caller.org_id, ticket_id=ticket_id,
                                                author_id=caller.user_id, body=body.body, internal=body.internal)
            await add_event(conn, source=SOURCE, type="ticket.commented", subject_type="ticket",
                            subject_id=ticket_id, tenant_id=caller.org_id, actor=caller.actor,
                            request_id=caller.request_id,
                            data={"comment_id": str(comment.id), "internal": comment.internal,
                                  "author_id": str(comment.author_id)})
        return comment

    async def list(
            self, caller: Caller, ticket_id: UUID, query: CommentListQuery) -> tuple[list[CommentOut], str | None]:
        after = self._decode_cursor(query.cursor, ticket_id) if query.cursor else None
        async with tenant_transaction(self.pool, caller.org_id) as conn:
            await self._visible_ticket(conn, caller, ticket_id)
            items = await repo.list_comments(conn, ticket_id=ticket_id, include_internal=caller.can(COMMENTS_INTERNAL),
                                             after=after, limit=query.limit + 1)
        next_cursor = None
        if len(items) > query.limit:
            items = items[:query.limit]
            last = items[-1]
            next_cursor = self.cursors.encode({"t": str(ticket_id), "c": last.created_at.isoformat(),
                                               "i": str(last.id)})
        return items, next_cursor

    def _decode_cursor(self, cursor: str, ticket_id: UUID) -> tuple[datetime, UUID]:
        payload = self.cursors.decode(cursor)
        if payload.get("t") != str(ticket_id):
            raise InvalidCursor("this cursor belongs to another ticket")
        try:
            moment = datetime.fromisoformat(payload["c"])
            if moment.tzinfo is None:
                raise ValueError
            return moment, UUID(payload["i"])
        except (KeyError, TypeError, ValueError):
            raise InvalidCursor() from None
