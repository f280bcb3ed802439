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

from shared.db import tenant_transaction
from shared.errors import PermissionMissing
from shared.messaging import add_event
from shared.messaging.outbox import event_json, new_event
from shared.pagination import CursorCodec
from shared.permissions import TICKETS_DELETE, TICKETS_READ_ALL, TICKETS_READ_OWN, TICKETS_TRIAGE
from shared.web import dumps_json

from ..caller import Caller
from ..memberships import repository as memberships
from . import repository as repo
from .errors import (
    AdminRequired,
    AssigneeNotAssignable,
    IdempotencyKeyReused,
    IfMatchInvalid,
    IfMatchRequired,
    InvalidCursor,
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
# (TicketRow.representation, repo.read_ticket), serialized by shared.web.json_response.
Ticket = dict[str, Any]


def _jsonable(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def event_data(ticket: Ticket) -> dict[str, Any]:
    """The ticket as event data: the representation with JSON's own types."""
    return {name: _jsonable(value) for name, value in ticket.items()}


class TicketService:
    def __init__(self, pool: asyncpg.Pool, *, cursor_secret: str, idempotency_ttl_s: int):
        self.pool = pool
        self.cursors = CursorCodec(cursor_secret, "tickets")
        self.idempotency_ttl_s = idempotency_ttl_s

    # ------------------------------------------------------------ create

    async def create(self, caller: Caller, body: TicketCreate, *, idempotency_key: str | None = None,
                     request_hash: str | None = None) -> CreatedTicket:
        if body.assignee_id is not None and not caller.can(TICKETS_TRIAGE):
            raise TicketChangeForbidden(["assignee_id"])
        try:
            if idempotency_key is None and body.assignee_id is None:
                # Nothing to check first: one statement, its own transaction, one round trip (a
                # deleted organization is refused by the counter's policy, below).
                return self._created(await self._insert(self.pool, caller, body))
            async with tenant_transaction(self.pool, caller.org_id) as conn:
                if not await memberships.organization_is_live(conn):
                    raise OrganizationNotFound()
                if idempotency_key is not None:
                    replay = await self._claim_key(conn, caller, idempotency_key, request_hash or "")
                    if replay is not None:
                        return replay
                if body.assignee_id is not None and not await memberships.is_assignable(conn, user_id=body.assignee_id):
                    raise AssigneeNotAssignable()
                created = self._created(await self._insert(conn, caller, body))
                if idempotency_key is not None:
                    await repo.store_idempotent_response(conn, user_id=caller.user_id, key=idempotency_key,
                                                         status=created.status, body=created.body, etag=created.etag)
                return created
        except asyncpg.InsufficientPrivilegeError:
            # The row-level security check refused the insert: the organization was deleted
            # (between our check and the insert, or with no check made).
            raise OrganizationNotFound() from None

    @staticmethod
    async def _insert(db: asyncpg.Pool | asyncpg.Connection, caller: Caller, body: TicketCreate) -> Ticket:
        ticket_id = uuid.uuid4()
        # The envelope is built and checked here, like add_event's; ticket_create writes what
        # only the row knows (number, status, version, times; occurred_at = created_at) into it
        # and inserts it in the same statement as the ticket. The values below stand in for
        # those until then.
        placeholder = datetime.now(UTC)
        event = new_event(source=SOURCE, type="ticket.created", subject_type="ticket", subject_id=ticket_id,
                          tenant_id=caller.org_id, actor=caller.actor, request_id=caller.request_id,
                          data=event_data({"id": ticket_id, "number": 0, "title": body.title,
                                           "description": body.description, "status": "open",
                                           "priority": body.priority, "tags": body.tags,
                                           "requester_id": caller.user_id, "assignee_id": body.assignee_id,
                                           "created_at": placeholder, "updated_at": placeholder, "version": 1}))
        return await repo.create_ticket(
            db, id=ticket_id, org_id=caller.org_id, title=body.title, description=body.description,
            priority=body.priority, tags=body.tags, requester_id=caller.user_id, assignee_id=body.assignee_id,
            event_id=event.id, event_type=event.type, event=event_json(event))

    @staticmethod
    def _created(ticket: Ticket) -> CreatedTicket:
        return CreatedTicket(201, dumps_json(ticket).decode(), etag_of(ticket["version"]), replayed=False)

    async def _claim_key(self, conn, caller: Caller, key: str, request_hash: str) -> CreatedTicket | None:
        await repo.purge_expired_idempotency_keys(conn, user_id=caller.user_id)
        if await repo.claim_idempotency_key(conn, org_id=caller.org_id, user_id=caller.user_id, key=key,
                                            request_hash=request_hash, ttl_s=self.idempotency_ttl_s):
            return None
        stored = await repo.get_idempotency_key(conn, user_id=caller.user_id, key=key)
        if (stored is None or stored.status is None  # pragma: no cover - committed only with a response
                or stored.body is None or stored.etag is None):
            raise IdempotencyKeyReused()
        if stored.request_hash != request_hash:
            raise IdempotencyKeyReused()
        return CreatedTicket(stored.status, stored.body, stored.etag, replayed=True)

    # ------------------------------------------------------------ read

    @staticmethod
    def _visible(caller: Caller, row: repo.TicketRow | None) -> repo.TicketRow:
        # Without tickets:read_all one sees only what one requested; another's ticket does not exist.
        if row is None or not caller.sees(row.requester_id):
            raise TicketNotFound()
        return row

    async def get(self, caller: Caller, ticket_id: UUID) -> Ticket:
        # One statement, one round trip (repo.read_ticket), under the same policy.
        ticket = await repo.read_ticket(self.pool, org_id=caller.org_id, ticket_id=ticket_id)
        if ticket is None or not caller.sees(ticket["requester_id"]):
            raise TicketNotFound()
        return ticket

    async def list(self, caller: Caller, query: TicketListQuery) -> tuple[builtins.list[Ticket], str | None]:
        requester_id = query.requester_id
        if not caller.can(TICKETS_READ_ALL):
            if not caller.can(TICKETS_READ_OWN):
                raise PermissionMissing(f"This action needs the permission '{TICKETS_READ_OWN}'.")
            if requester_id is not None and requester_id != caller.user_id:
                return [], None
            requester_id = caller.user_id
        filters = repo.TicketFilter(status=query.status, priority=query.priority, assignee_id=query.assignee_id,
                                    requester_id=requester_id, tag=query.tag, q=query.q)
        fingerprint = self._filter_fingerprint(filters)
        after = self._decode_cursor(query.cursor, query.sort, fingerprint) if query.cursor else None
        async with tenant_transaction(self.pool, caller.org_id) as conn:
            rows = await repo.list_tickets(conn, filters=filters, sort=query.sort, after=after, limit=query.limit + 1)
        next_cursor = None
        if len(rows) > query.limit:
            rows = rows[:query.limit]
            next_cursor = self.cursors.encode({"s": query.sort, "f": fingerprint,
                                               "k": _jsonable(rows[-1].sort_key(query.sort))})
        return [r.representation() for r in rows], next_cursor

    @staticmethod
    def _filter_fingerprint(filters: repo.TicketFilter) -> str:
        raw = json.dumps([_jsonable(v) for v in vars(filters).values()], separators=(",", ":"))
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    def _decode_cursor(self, cursor: str, sort: str, fingerprint: str) -> builtins.list[Any]:
        payload = self.cursors.decode(cursor)  # 422 on field "cursor" when forged or damaged
        if payload.get("s") != sort:
            raise InvalidCursor("this cursor belongs to another sort order")
        if payload.get("f") != fingerprint:
            raise InvalidCursor("this cursor belongs to other filters")
        columns = repo.SORTS[sort][0]
        key = payload.get("k")
        if not isinstance(key, list) or len(key) != len(columns):
            raise InvalidCursor()
        try:
            out: builtins.list[Any] = []
            for column, value in zip(columns, key, strict=True):
                if column == "id":
                    out.append(UUID(value))
                elif column == "priority_rank":
                    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 4:
                        raise ValueError
                    out.append(value)
                else:
                    moment = datetime.fromisoformat(value)
                    if moment.tzinfo is None:
                        raise ValueError
                    out.append(moment)
            return out
        except (TypeError, ValueError, AttributeError):
            raise InvalidCursor() from None

    # ------------------------------------------------------------ change

    async def update(self, caller: Caller, ticket_id: UUID, patch: TicketUpdate, *, if_match: str | None) -> Ticket:
        sent = patch.sent()
        triage = caller.can(TICKETS_TRIAGE)
        if not triage and set(sent) - MEMBER_EDITABLE:
            raise TicketChangeForbidden(sorted(set(sent) - MEMBER_EDITABLE))
        if if_match is None:
            raise IfMatchRequired()
        async with tenant_transaction(self.pool, caller.org_id) as conn:
            # FOR UPDATE: a concurrent PATCH with the same If-Match waits here, then sees the
            # new version and gets 412.
            row = self._visible(caller, await repo.get_ticket(conn, ticket_id=ticket_id, for_update=True))
            if not triage and row.requester_id != caller.user_id:
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
            await self._event(conn, caller, "ticket.updated", row.id, {
                "changes": {name: [_jsonable(old), _jsonable(new)] for name, (old, new) in changes.items()},
                "version": row.version})
        return row.representation()

    async def delete(self, caller: Caller, ticket_id: UUID, *, if_match: str | None = None) -> None:
        self._require_admin(caller)
        async with tenant_transaction(self.pool, caller.org_id) as conn:
            row = await repo.get_ticket(conn, ticket_id=ticket_id, for_update=True)
            if row is None:
                raise TicketNotFound()
            if if_match is not None and not if_match_allows(if_match, row.version):
                raise TicketVersionMismatch(etag_of(row.version))
            deleted = await repo.set_deleted(conn, ticket_id=ticket_id, deleted=True)
            if deleted is None:  # pragma: no cover - the live row is locked above
                raise TicketNotFound()
            await self._event(conn, caller, "ticket.deleted", deleted.id, event_data(deleted.representation()))

    async def restore(self, caller: Caller, ticket_id: UUID) -> Ticket:
        self._require_admin(caller)
        async with tenant_transaction(self.pool, caller.org_id) as conn:
            row = await repo.set_deleted(conn, ticket_id=ticket_id, deleted=False)
            if row is None:
                if await repo.get_ticket(conn, ticket_id=ticket_id) is not None:
                    raise TicketNotDeleted()
                raise TicketNotFound()
            out = row.representation()
            await self._event(conn, caller, "ticket.restored", row.id, event_data(out))
        return out

    @staticmethod
    def _require_admin(caller: Caller) -> None:
        if not caller.can(TICKETS_DELETE):
            raise AdminRequired()

    @staticmethod
    async def _event(conn, caller: Caller, type_: str, ticket_id: UUID, data: dict) -> None:
        await add_event(conn, source=SOURCE, type=type_, subject_type="ticket", subject_id=ticket_id,
                        tenant_id=caller.org_id, actor=caller.actor, request_id=caller.request_id, data=data)
