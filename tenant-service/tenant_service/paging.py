"""Keyset cursors on (timestamp, id), opaque and signed (shared.pagination.CursorCodec)."""
from __future__ import annotations

from datetime import datetime
from uuid import UUID

from shared.errors import InvalidCursor
from shared.pagination import CursorCodec

Key = tuple[datetime, UUID]


def decode_key(codec: CursorCodec, cursor: str | None) -> Key | None:
    if not cursor:
        return None
    payload = codec.decode(cursor)
    try:
        return datetime.fromisoformat(payload["t"]), UUID(payload["id"])
    except (KeyError, TypeError, ValueError):
        raise InvalidCursor() from None


def encode_key(codec: CursorCodec, at: datetime, id_: UUID) -> str:
    return codec.encode({"t": at.isoformat(), "id": str(id_)})


async def fetch_page(conn, select: str, order: str, keyset: str, params: list, after: Key | None) -> list:
    """Run a keyset-paginated query: ``select`` ends with its WHERE clause, ``keyset`` compares
    the order key with the two parameters after ``params`` (e.g. ``"AND (created_at, id) < ($3, $4) "``).
    Two statements rather than ``$3 IS NULL OR ...``: each keeps a plan that walks its index in
    order and stops at the limit."""
    if after is None:
        return await conn.fetch(select + order, *params)
    return await conn.fetch(select + keyset + order, *params, *after)


def next_cursor(codec: CursorCodec, rows: list, limit: int, key) -> tuple[list, str | None]:
    """``rows`` were fetched with ``limit + 1``: the extra row only says a next page exists."""
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    at, id_ = key(rows[-1])
    return rows, encode_key(codec, at, id_)
