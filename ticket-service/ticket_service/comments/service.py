"""Who may comment and who sees which comments."""
from __future__ import annotations

import uuid
from datetime import datetime
from uuid import UUID

import asyncpg

from shared.auth import Principal
from shared.context import RequestContext, organization_id
from shared.db import tenant_transaction
from shared.messaging import add_event
from shared.pagination import KeysetCursors
from shared.permissions import COMMENTS_INTERNAL

from ..tickets import repository as tickets
from ..tickets.errors import TicketNotFound
from ..tickets.service import SOURCE
from ..visibility import sees
from . import repository as repo
from .errors import InternalCommentForbidden
from .schemas import CommentCreate, CommentListQuery, CommentOut


class CommentService:
    def __init__(self, pool: asyncpg.Pool, *, cursor_secret: str):
        self.pool = pool
        self.cursors = KeysetCursors(cursor_secret, "ticket-comments", datetime, UUID)  # (created_at, id)

    async def _visible_ticket(self, conn, principal: Principal, ticket_id: UUID) -> tickets.TicketRow:
        row = await tickets.get_ticket(conn, ticket_id=ticket_id)
        if row is None or not sees(principal, row.requester_id):
            raise TicketNotFound()
        return row

    async def create(self, principal: Principal, ctx: RequestContext, ticket_id: UUID,
                     body: CommentCreate) -> CommentOut:
        if body.internal and not principal.has_permission(COMMENTS_INTERNAL):
            raise InternalCommentForbidden()
        org_id = organization_id(principal)
        async with tenant_transaction(self.pool, org_id) as conn:
            await self._visible_ticket(conn, principal, ticket_id)
            comment = await repo.insert_comment(conn, id=uuid.uuid4(), org_id=org_id, ticket_id=ticket_id,
                                                author_id=principal.user_id, body=body.body, internal=body.internal)
            await add_event(conn, source=SOURCE, type="ticket.commented", subject_type="ticket",
                            subject_id=ticket_id, tenant_id=org_id, actor=ctx.actor(principal),
                            request_id=ctx.request_id,
                            data={"comment_id": str(comment.id), "internal": comment.internal,
                                  "author_id": str(comment.author_id)})
        return comment

    async def list(self, principal: Principal, ticket_id: UUID,
                   query: CommentListQuery) -> tuple[list[CommentOut], str | None]:
        cursors = self.cursors.bind(ticket=ticket_id)
        after = cursors.after(query.cursor)
        async with tenant_transaction(self.pool, organization_id(principal)) as conn:
            await self._visible_ticket(conn, principal, ticket_id)
            items = await repo.list_comments(conn, ticket_id=ticket_id,
                                             include_internal=principal.has_permission(COMMENTS_INTERNAL),
                                             after=after, limit=query.limit + 1)
        return cursors.page(items, query.limit, lambda c: (c.created_at, c.id))
