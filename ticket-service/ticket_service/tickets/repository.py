"""SQL of tickets, their numbering and idempotency keys.

Every function runs on a connection inside shared.db.tenant_transaction: row-level security
adds ``org_id = <the transaction's organization>`` to each statement, so the queries below
never need to name the organization except when inserting. ``read_ticket`` is the exception:
one statement that scopes itself (the ticket_read function, same policy).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

import asyncpg

_COLUMNS = ("id, org_id, number, title, description, status, priority, priority_rank, tags, requester_id, "
            "assignee_id, created_at, updated_at, version, deleted_at")

# Columns a PATCH may set; update_ticket refuses any other name, so no caller-supplied text
# ever reaches the SQL string.
UPDATABLE = ("title", "description", "status", "priority", "assignee_id", "tags")

# Sort name -> (key columns after org_id, direction). id ends every key so the order is total.
SORTS: dict[str, tuple[tuple[str, ...], str]] = {
    "created_at": (("created_at", "id"), "ASC"),
    "-created_at": (("created_at", "id"), "DESC"),
    "updated_at": (("updated_at", "id"), "ASC"),
    "-updated_at": (("updated_at", "id"), "DESC"),
    "priority": (("priority_rank", "created_at", "id"), "ASC"),
    "-priority": (("priority_rank", "created_at", "id"), "DESC"),
}
_KEY_TYPES = {"created_at": "timestamptz", "updated_at": "timestamptz", "priority_rank": "smallint", "id": "uuid"}

# A list page's columns, by sort: the ticket's representation (the API's Ticket as JSON text,
# kept by PostgreSQL in a generated column: migration ticket_representation), then the sort's key
# (the id as text: a cursor writes it as text anyway). Nothing else is decoded: the page is the
# representations joined (shared.pagination.page_json).
_LISTED = {sort: ", ".join(["representation", *("id::text AS id" if c == "id" else c for c in columns)])
           for sort, (columns, _) in SORTS.items()}

# Search (q) is answered by ticket_search (search_page below), whose ids come from
# ticket_search_page (migration search_page): it walks the page's sort order testing the term,
# at most this many rows at a time, which fills a page of a common term; a rarer term is read
# through the organization's full-text index instead.
SEARCH_WALK_ROWS = 10_000


class TicketRow(NamedTuple):
    """One row of _COLUMNS, in that order (a tuple: built from a record in one step)."""
    id: UUID
    org_id: UUID
    number: int
    title: str
    description: str
    status: str
    priority: str
    priority_rank: int
    tags: list[str]
    requester_id: UUID
    assignee_id: UUID | None
    created_at: datetime
    updated_at: datetime
    version: int
    deleted_at: datetime | None

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> TicketRow:
        return cls._make(record.values())

    def representation(self) -> dict[str, Any]:
        """The API's Ticket (schemas.TicketOut), key for key, from a trusted row: nothing to
        validate, so no model is built (tests/tickets/test_one_statement_paths.py holds the two
        equal). Ids as text already; times stay datetimes. PostgreSQL writes the same JSON into the
        row's representation column, which list pages read (migration ticket_representation;
        tests/tickets/test_representation.py holds the two equal): a change here goes there too."""
        assignee = self.assignee_id
        return {"id": str(self.id), "number": self.number, "title": self.title, "description": self.description,
                "status": self.status, "priority": self.priority, "tags": self.tags,
                "requester_id": str(self.requester_id), "assignee_id": None if assignee is None else str(assignee),
                "created_at": self.created_at, "updated_at": self.updated_at, "version": self.version}


def listed(record: asyncpg.Record) -> str:
    """A row of a list page (_LISTED) as the API's Ticket: its representation, JSON text that
    shared.web.dumps_json would write for TicketRow.representation (tests/tickets/
    test_representation.py holds them equal byte for byte)."""
    return record[0]


def listed_key(record: asyncpg.Record, sort: str) -> list[Any]:
    """The sort key of a list page's row (the id as text: a cursor writes it as text anyway)."""
    return [record[column] for column in SORTS[sort][0]]


@dataclass(frozen=True)
class TicketFilter:
    status: str | None = None
    priority: str | None = None
    assignee_id: UUID | None = None
    requester_id: UUID | None = None
    tag: str | None = None
    q: str | None = None


@dataclass(frozen=True)
class NewTicket:
    """One creation as ticket_create_many takes it: the row's own values and its ticket.created
    envelope (``event``: JSON text), which the function completes with what only the row knows."""
    id: UUID
    title: str
    description: str
    priority: str
    tags: list[str]
    requester_id: UUID
    assignee_id: UUID | None
    event_id: UUID
    event: str


async def create_tickets(db: asyncpg.Pool | asyncpg.Connection, org_id: UUID,
                         tickets: list[NewTicket]) -> list[dict[str, Any]]:
    """Numbers, rows and ticket.created events of several new tickets of one organization in one
    statement (ticket_create_many, migration ticket_create_many); the new tickets as the API's
    Ticket, in the order given (their numbers in that order). On the pool it is its own
    transaction: the organization's counter row is held for that statement and its commit only.
    Inside a transaction (``db`` a connection of tenant_transaction) it commits with the rest."""
    records = await db.fetch(
        "SELECT * FROM ticket_create_many($1, $2, $3, $4, $5, $6, $7, $8, $9, 'ticket.created', $10)",
        org_id, [t.id for t in tickets], [t.title for t in tickets], [t.description for t in tickets],
        [t.priority for t in tickets], [json.dumps(t.tags) for t in tickets], [t.requester_id for t in tickets],
        [t.assignee_id for t in tickets], [t.event_id for t in tickets], [t.event for t in tickets])
    return [dict(record) for record in records]


async def get_ticket(conn: asyncpg.Connection, *, ticket_id: UUID, deleted: bool = False,
                     for_update: bool = False) -> TicketRow | None:
    """A live ticket (or, with ``deleted=True``, a soft-deleted one) of the organization."""
    record = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM ticket WHERE id = $1 AND (deleted_at IS NOT NULL) = $2"
        + (" FOR UPDATE" if for_update else ""), ticket_id, deleted)
    return TicketRow.from_record(record) if record else None


async def read_ticket(pool: asyncpg.Pool, *, org_id: UUID, ticket_id: UUID) -> dict[str, Any] | None:
    """A live ticket of the organization as the API's Ticket (TicketRow.representation's keys),
    in one statement and one round trip, outside any transaction: ticket_read sets the scope
    transaction-local and reads under the policy (migration ticket_read_one_statement)."""
    record = await pool.fetchrow("SELECT * FROM ticket_read($1, $2)", org_id, ticket_id)
    return dict(record) if record is not None else None


async def update_ticket(conn: asyncpg.Connection, *, ticket_id: UUID, values: dict[str, Any]) -> TicketRow:
    unknown = set(values) - set(UPDATABLE)
    if unknown or not values:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    names = [name for name in UPDATABLE if name in values]
    assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(names, start=2))
    record = await conn.fetchrow(
        f"""
        UPDATE ticket SET {assignments}, version = version + 1, updated_at = clock_timestamp()
        WHERE id = $1 AND deleted_at IS NULL
        RETURNING {_COLUMNS}
        """, ticket_id, *(values[name] for name in names))
    return TicketRow.from_record(record)


async def set_deleted(conn: asyncpg.Connection, *, ticket_id: UUID, deleted: bool) -> TicketRow | None:
    record = await conn.fetchrow(
        f"""
        UPDATE ticket
        SET deleted_at = CASE WHEN $2 THEN clock_timestamp() END,
            version = version + 1, updated_at = clock_timestamp()
        WHERE id = $1 AND (deleted_at IS NULL) = $2
        RETURNING {_COLUMNS}
        """, ticket_id, deleted)
    return TicketRow.from_record(record) if record else None


async def list_page(pool: asyncpg.Pool, *, org_id: UUID, sort: str, after: list[Any] | None,
                    limit: int) -> list[asyncpg.Record]:
    """An unfiltered keyset page (what ``list_tickets`` answers when ``filters`` is empty) in one
    statement and one round trip, outside any transaction: ticket_page sets the scope
    transaction-local and reads under the policy (migration ticket_page)."""
    columns, _ = SORTS[sort]
    key = dict(zip(columns, after, strict=True)) if after is not None else {}
    return await pool.fetch(f"SELECT {_LISTED[sort]} FROM ticket_page($1, $2, $3, $4, $5, $6)", org_id, sort, limit,
                            key.get("priority_rank"), key.get(columns[-2]), key.get("id"))


async def search_page(pool: asyncpg.Pool, *, org_id: UUID, filters: TicketFilter, sort: str, after: list[Any] | None,
                      limit: int) -> list[asyncpg.Record]:
    """A search page (``filters.q`` set, with any other filters) in one statement and one round
    trip, outside any transaction: ticket_search sets the scope transaction-local, takes the
    page's ids from ticket_search_page and reads their rows under the policy (migration
    ticket_search). The same pages as ``list_tickets`` with ``q``."""
    columns, _ = SORTS[sort]
    key = dict(zip(columns, after, strict=True)) if after is not None else {}
    return await pool.fetch(
        f"SELECT {_LISTED[sort]} FROM ticket_search($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        org_id, filters.q, sort, limit, filters.status, filters.priority, filters.assignee_id, filters.requester_id,
        filters.tag, key.get("priority_rank"), key.get(columns[-2]), key.get("id"), SEARCH_WALK_ROWS)


async def list_tickets(conn: asyncpg.Connection, *, filters: TicketFilter, sort: str,
                       after: list[Any] | None, limit: int) -> list[asyncpg.Record]:
    """One keyset page: rows strictly after ``after`` (the sort key of the previous page's last
    row) in ``sort`` order. The row comparison on (key..., id) walks the matching
    (org_id, key..., id) index from the cursor on, so every page costs the same."""
    columns, direction = SORTS[sort]
    where = ["deleted_at IS NULL"]
    args: list[Any] = []

    def arg(value: Any, cast: str = "") -> str:
        args.append(value)
        return f"${len(args)}{cast}"

    if filters.status is not None:
        where.append(f"status = {arg(filters.status)}")
    if filters.priority is not None:
        where.append(f"priority = {arg(filters.priority)}")
    if filters.assignee_id is not None:
        where.append(f"assignee_id = {arg(filters.assignee_id)}")
    if filters.requester_id is not None:
        where.append(f"requester_id = {arg(filters.requester_id)}")
    if filters.tag is not None:
        where.append(f"{arg(filters.tag)} = ANY(tags)")
    if filters.q is not None:
        raise ValueError("a search is answered by search_page (ticket_search)")
    if after is not None:
        op = ">" if direction == "ASC" else "<"
        placeholders = ", ".join(arg(value, f"::{_KEY_TYPES[col]}") for col, value in zip(columns, after, strict=True))
        where.append(f"({', '.join(columns)}) {op} ({placeholders})")
    # Qualified: a bare ORDER BY name means the output column first, and _LISTED's id is text (an
    # order no index has: every matching row would be read and sorted).
    order = ", ".join(f"ticket.{col} {direction}" for col in columns)
    return await conn.fetch(
        f"SELECT {_LISTED[sort]} FROM ticket WHERE {' AND '.join(where)} ORDER BY {order} LIMIT {arg(limit)}", *args)


# ---------------------------------------------------------------- idempotency keys

@dataclass(frozen=True)
class StoredResponse:
    request_hash: str
    status: int | None
    body: str | None
    etag: str | None


async def claim_idempotency_key(conn: asyncpg.Connection, *, org_id: UUID, user_id: UUID, key: str,
                                request_hash: str, ttl_s: int) -> bool:
    """True when this request owns the key (new, or the old one expired). A concurrent
    request with the same key blocks here on the uncommitted row until the first commits
    (then it gets False and reads the stored response) or rolls back (then it owns the key)."""
    return bool(await conn.fetchval(
        """
        INSERT INTO idempotency_key (org_id, user_id, key, request_hash, expires_at)
        VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))
        ON CONFLICT (org_id, user_id, key) DO UPDATE
            SET request_hash = EXCLUDED.request_hash, response_status = NULL, response_body = NULL,
                response_etag = NULL, created_at = now(), expires_at = EXCLUDED.expires_at
            WHERE idempotency_key.expires_at <= now()
        RETURNING true
        """, org_id, user_id, key, request_hash, float(ttl_s)))


async def get_idempotency_key(conn: asyncpg.Connection, *, user_id: UUID, key: str) -> StoredResponse | None:
    record = await conn.fetchrow(
        "SELECT request_hash, response_status, response_body, response_etag "
        "FROM idempotency_key WHERE user_id = $1 AND key = $2", user_id, key)
    if record is None:
        return None
    return StoredResponse(record["request_hash"], record["response_status"], record["response_body"],
                          record["response_etag"])


async def store_idempotent_response(conn: asyncpg.Connection, *, user_id: UUID, key: str, status: int,
                                    body: str, etag: str) -> None:
    await conn.execute(
        "UPDATE idempotency_key SET response_status = $3, response_body = $4, response_etag = $5 "
        "WHERE user_id = $1 AND key = $2", user_id, key, status, body, etag)


async def purge_expired_idempotency_keys(conn: asyncpg.Connection, *, user_id: UUID) -> None:
    await conn.execute("DELETE FROM idempotency_key WHERE user_id = $1 AND expires_at <= now()", user_id)
