"""What may happen to a ticket, and who may do it. Each public method is one transaction scoped
to the caller's organization (row-level security); its events go to the outbox in that same
transaction."""
from __future__ import annotations

import builtins
import hashlib
import json
import logging
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from shared.auth import Principal
from shared.context import RequestContext, organization_id
from shared.db import tenant_transaction
from shared.errors import PermissionMissing
from shared.messaging import add_event
from shared.messaging.outbox import event_json, new_event
from shared.pagination import KeysetCursors, KeyType
from shared.permissions import TICKETS_DELETE, TICKETS_READ_ALL, TICKETS_READ_OWN, TICKETS_TRIAGE
from shared.web import dumps_json

from ..memberships import repository as memberships
from ..visibility import sees
from . import repository as repo
from .batching import Batches
from .errors import (
    AdminRequired,
    AssigneeNotAssignable,
    IdempotencyKeyReused,
    IfMatchInvalid,
    IfMatchRequired,
    OrganizationNotFound,
    StatusMoveNotAllowed,
    TicketChangeForbidden,
    TicketNotDeleted,
    TicketNotFound,
    TicketVersionMismatch,
)
from .schemas import STATUS_MOVES, TicketCreate, TicketListQuery, TicketUpdate

log = logging.getLogger(__name__)

SOURCE = "ticket-service"
# What a requester may edit on their own ticket without tickets:triage.
MEMBER_EDITABLE = frozenset({"title", "description"})


def _refused_alone(exc: BaseException) -> bool:
    """A batch the server refused for what one of its creations holds (a value a column's check
    or type refuses: SQLSTATE classes 22 and 23) is tried one creation at a time
    (tickets.batching), so that creation fails alone. Any other error goes to every caller of
    the batch: the organization's refusal (deleted) would refuse each alike, and an error about
    the connection (the server shutting the session down, class 57) may come after the commit,
    when only the callers may decide to try again."""
    return isinstance(exc, (asyncpg.exceptions.DataError, asyncpg.exceptions.IntegrityConstraintViolationError))


def etag_of(version: int) -> str:
    # A strong validator: the version changes with every change of the representation.
    return f'"{version}"'


# RFC 9110 If-Match: `*` or a list of entity tags (the API document states the same pattern).
IF_MATCH_PATTERN = r'^(\*|(W/)?"[!#-~]*"( *, *(W/)?"[!#-~]*")*)$'
_IF_MATCH = re.compile(IF_MATCH_PATTERN)


def check_if_match(header: str | None) -> str | None:
    if header is not None and not _IF_MATCH.match(header):
        raise IfMatchInvalid()
    return header


def if_match_allows(header: str, version: int) -> bool:
    """RFC 9110 If-Match: ``*`` or any listed tag equal to the current one. A weak form of
    our tag (``W/"3"``) is accepted too, since intermediaries may weaken tags."""
    current = etag_of(version)
    for tag in header.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") == current:
            return True
    return False


def request_fingerprint(raw_body: Any) -> str:
    """The same JSON document gives the same fingerprint whatever its key order or spacing."""
    canonical = json.dumps(raw_body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class CreatedTicket:
    """The response of a creation: the first one, or its stored replay."""
    status: int
    body: str
    etag: str
    replayed: bool


# A ticket as the API shows it (schemas.TicketOut's keys): built from trusted rows
# (TicketRow.representation, repo.read_ticket), serialized by shared.web.json_response. A list
# page's tickets are the rows' stored JSON instead (repo.listed).
Ticket = dict[str, Any]


def _jsonable(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


# The Python type of each order-key column of repo.SORTS.
_KEY_TYPES: dict[str, KeyType] = {"created_at": datetime, "updated_at": datetime, "priority_rank": int, "id": UUID}


def event_data(ticket: Ticket) -> dict[str, Any]:
    """The ticket as event data: the representation with JSON's own types."""
    return {name: _jsonable(value) for name, value in ticket.items()}


class TicketService:
    def __init__(self, pool: asyncpg.Pool, *, cursor_secret: str, idempotency_ttl_s: int,
                 create_batch_max: int = 64):
        self.pool = pool
        # Creations of one organization that arrive while its previous ones are being written go
        # together in the next statement (tickets.batching).
        self.creations: Batches[repo.NewTicket, Ticket] = Batches(
            self._write_creations, max_size=create_batch_max, retry_alone=_refused_alone)
        # One keyset per sort (its key columns, id last); every cursor is bound to its sort and filters.
        self.cursors = {sort: KeysetCursors(cursor_secret, "tickets", *(_KEY_TYPES[c] for c in columns))
                        for sort, (columns, _) in repo.SORTS.items()}
        self.idempotency_ttl_s = idempotency_ttl_s

    # ------------------------------------------------------------ create

    async def create(self, principal: Principal, ctx: RequestContext, body: TicketCreate, *,
                     idempotency_key: str | None = None, request_hash: str | None = None) -> CreatedTicket:
        if body.assignee_id is not None and not principal.has_permission(TICKETS_TRIAGE):
            raise TicketChangeForbidden(["assignee_id"])
        org_id = organization_id(principal)
        try:
            if idempotency_key is None and body.assignee_id is None:
                # Nothing to check first: it goes with the organization's next batch, one
                # statement and its own transaction (a deleted organization is refused by the
                # counter's policy, below).
                return self._created(await self.creations.submit(org_id, self._new_ticket(principal, ctx, body)))
            async with tenant_transaction(self.pool, org_id) as conn:
                if not await memberships.organization_is_live(conn):
                    raise OrganizationNotFound()
                if idempotency_key is not None:
                    replay = await self._claim_key(conn, principal, idempotency_key, request_hash or "")
                    if replay is not None:
                        return replay
                if body.assignee_id is not None and not await memberships.is_assignable(conn, user_id=body.assignee_id):
                    raise AssigneeNotAssignable()
                [ticket] = await repo.create_tickets(conn, org_id, [self._new_ticket(principal, ctx, body)])
                created = self._created(ticket)
                if idempotency_key is not None:
                    await repo.store_idempotent_response(conn, user_id=principal.user_id, key=idempotency_key,
                                                         status=created.status, body=created.body, etag=created.etag)
                return created
        except asyncpg.InsufficientPrivilegeError:
            # The row-level security check refused the insert: the organization was deleted
            # (between our check and the insert, or with no check made).
            raise OrganizationNotFound() from None

    async def _write_creations(self, org_id: Any, tickets: list[repo.NewTicket]) -> list[Ticket]:
        return await repo.create_tickets(self.pool, org_id, tickets)  # in the order given

    @staticmethod
    def _new_ticket(principal: Principal, ctx: RequestContext, body: TicketCreate) -> repo.NewTicket:
        ticket_id = uuid.uuid4()
        # The envelope is built and checked here, like add_event's; ticket_create_many writes
        # what only the row knows (number, status, version, times; occurred_at = created_at)
        # into it and inserts it in the same statement as the ticket. The values below stand in
        # for those until then.
        placeholder = datetime.now(UTC)
        event = new_event(source=SOURCE, type="ticket.created", subject_type="ticket", subject_id=ticket_id,
                          tenant_id=organization_id(principal), actor=ctx.actor(principal), request_id=ctx.request_id,
                          data=event_data({"id": ticket_id, "number": 0, "title": body.title,
                                           "description": body.description, "status": "open",
                                           "priority": body.priority, "tags": body.tags,
                                           "requester_id": principal.user_id, "assignee_id": body.assignee_id,
                                           "created_at": placeholder, "updated_at": placeholder, "version": 1}))
        return repo.NewTicket(id=ticket_id, title=body.title, description=body.description, priority=body.priority,
                              tags=body.tags, requester_id=principal.user_id, assignee_id=body.assignee_id,
                              event_id=event.id, event=event_json(event))

    @staticmethod
    def _created(ticket: Ticket) -> CreatedTicket:
        return CreatedTicket(201, dumps_json(ticket).decode(), etag_of(ticket["version"]), replayed=False)

    async def _claim_key(self, conn, principal: Principal, key: str, request_hash: str) -> CreatedTicket | None:
        await repo.purge_expired_idempotency_keys(conn, user_id=principal.user_id)
        if await repo.claim_idempotency_key(conn, org_id=organization_id(principal), user_id=principal.user_id,
                                            key=key, request_hash=request_hash, ttl_s=self.idempotency_ttl_s):
            return None
        stored = await repo.get_idempotency_key(conn, user_id=principal.user_id, key=key)
        if (stored is None or stored.status is None  # pragma: no cover - committed only with a response
                or stored.body is None or stored.etag is None):
            raise IdempotencyKeyReused()
        if stored.request_hash != request_hash:
            raise IdempotencyKeyReused()
        return CreatedTicket(stored.status, stored.body, stored.etag, replayed=True)

    # ------------------------------------------------------------ read

    @staticmethod
    def _visible(principal: Principal, row: repo.TicketRow | None) -> repo.TicketRow:
        # Without tickets:read_all one sees only what one requested; another's ticket does not exist.
        if row is None or not sees(principal, row.requester_id):
            raise TicketNotFound()
        return row

    async def get(self, principal: Principal, ticket_id: UUID) -> Ticket:
        # One statement, one round trip (repo.read_ticket), under the same policy.
        ticket = await repo.read_ticket(self.pool, org_id=organization_id(principal), ticket_id=ticket_id)
        if ticket is None or not sees(principal, ticket["requester_id"]):
            raise TicketNotFound()
        return ticket

    async def list(self, principal: Principal, query: TicketListQuery) -> tuple[builtins.list[str], str | None]:
        """A page of tickets: each the API's Ticket as JSON text (repo.listed), and the next cursor."""
        requester_id = query.requester_id
        if not principal.has_permission(TICKETS_READ_ALL):
            if not principal.has_permission(TICKETS_READ_OWN):
                raise PermissionMissing(f"This action needs the permission '{TICKETS_READ_OWN}'.")
            if requester_id is not None and requester_id != principal.user_id:
                return [], None
            requester_id = principal.user_id
        filters = repo.TicketFilter(status=query.status, priority=query.priority, assignee_id=query.assignee_id,
                                    requester_id=requester_id, tag=query.tag, q=query.q)
        cursors = self.cursors[query.sort].bind(sort=query.sort, **vars(filters))
        after = cursors.after(query.cursor)
        if filters == repo.TicketFilter():
            # Nothing to filter on (the list as agents and admins open it): one statement.
            rows = await repo.list_page(self.pool, org_id=organization_id(principal), sort=query.sort,
                                        after=None if after is None else list(after), limit=query.limit + 1)
        elif filters.q is not None:
            # A search, with or without other filters: one statement as well (ticket_search).
            rows = await repo.search_page(self.pool, org_id=organization_id(principal), filters=filters,
                                          sort=query.sort, after=None if after is None else list(after),
                                          limit=query.limit + 1)
        else:
            # Status, priority and tag have no index of their own: whatever their values, the page
            # walks its sort's index and tests them, so the statement keeps one generic plan
            # instead of being planned again on every call. A requester or assignee filter is
            # planned for its value (a rare one is read through its own index).
            generic = filters.requester_id is None and filters.assignee_id is None
            async with tenant_transaction(self.pool, organization_id(principal), generic_plans=generic) as conn:
                rows = await repo.list_tickets(conn, filters=filters, sort=query.sort,
                                               after=None if after is None else list(after), limit=query.limit + 1)
        rows, next_cursor = cursors.page(rows, query.limit, lambda r: repo.listed_key(r, query.sort))
        return [repo.listed(r) for r in rows], next_cursor

    # ------------------------------------------------------------ change

    async def update(self, principal: Principal, ctx: RequestContext, ticket_id: UUID, patch: TicketUpdate, *,
                     if_match: str | None) -> Ticket:
        sent = patch.sent()
        triage = principal.has_permission(TICKETS_TRIAGE)
        if not triage and set(sent) - MEMBER_EDITABLE:
            raise TicketChangeForbidden(sorted(set(sent) - MEMBER_EDITABLE))
        if if_match is None:
            raise IfMatchRequired()
        async with tenant_transaction(self.pool, organization_id(principal)) as conn:
            # FOR UPDATE: a concurrent PATCH with the same If-Match waits here, then sees the
            # new version and gets 412.
            row = self._visible(principal, await repo.get_ticket(conn, ticket_id=ticket_id, for_update=True))
            if not triage and row.requester_id != principal.user_id:
                # Seen through tickets:read_all, but editing another's ticket is triage.
                raise TicketChangeForbidden(sorted(sent))
            if not if_match_allows(if_match, row.version):
                raise TicketVersionMismatch(etag_of(row.version))
            changes = {name: (getattr(row, name), value) for name, value in sent.items()
                       if getattr(row, name) != value}
            if "status" in changes:
                old, new = changes["status"]
                if new not in STATUS_MOVES[old]:
                    raise StatusMoveNotAllowed(old, new)
            if "assignee_id" in changes and changes["assignee_id"][1] is not None:
                if not await memberships.is_assignable(conn, user_id=changes["assignee_id"][1]):
                    raise AssigneeNotAssignable()
            if not changes:
                return row.representation()
            row = await repo.update_ticket(conn, ticket_id=ticket_id,
                                           values={name: new for name, (_, new) in changes.items()})
            await self._event(conn, principal, ctx, "ticket.updated", row.id, {
                "changes": {name: [_jsonable(old), _jsonable(new)] for name, (old, new) in changes.items()},
                "version": row.version})
        return row.representation()

    async def delete(self, principal: Principal, ctx: RequestContext, ticket_id: UUID, *,
                     if_match: str | None = None) -> None:
        self._require_admin(principal)
        async with tenant_transaction(self.pool, organization_id(principal)) as conn:
            row = await repo.get_ticket(conn, ticket_id=ticket_id, for_update=True)
            if row is None:
                raise TicketNotFound()
            if if_match is not None and not if_match_allows(if_match, row.version):
                raise TicketVersionMismatch(etag_of(row.version))
            deleted = await repo.set_deleted(conn, ticket_id=ticket_id, deleted=True)
            if deleted is None:  # pragma: no cover - the live row is locked above
                raise TicketNotFound()
            await self._event(conn, principal, ctx, "ticket.deleted", deleted.id, event_data(deleted.representation()))

    async def restore(self, principal: Principal, ctx: RequestContext, ticket_id: UUID) -> Ticket:
        self._require_admin(principal)
        async with tenant_transaction(self.pool, organization_id(principal)) as conn:
            row = await repo.set_deleted(conn, ticket_id=ticket_id, deleted=False)
            if row is None:
                if await repo.get_ticket(conn, ticket_id=ticket_id) is not None:
                    raise TicketNotDeleted()
                raise TicketNotFound()
            out = row.representation()
            await self._event(conn, principal, ctx, "ticket.restored", row.id, event_data(out))
        return out

    @staticmethod
    def _require_admin(principal: Principal) -> None:
        if not principal.has_permission(TICKETS_DELETE):
            raise AdminRequired()

    @staticmethod
    async def _event(conn, principal: Principal, ctx: RequestContext, type_: str, ticket_id: UUID, data: dict) -> None:
        await add_event(conn, source=SOURCE, type=type_, subject_type="ticket", subject_id=ticket_id,
                        tenant_id=organization_id(principal), actor=ctx.actor(principal), request_id=ctx.request_id,
                        data=data)
