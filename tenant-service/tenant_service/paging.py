"""Keyset-paginated reads (the cursors themselves are shared.pagination.KeysetCursors)."""
from __future__ import annotations

from typing import Any


async def fetch_page(conn, select: str, order: str, keyset: str, params: list, after: tuple[Any, ...] | None) -> list:
    """Run a keyset-paginated query: ``select`` ends with its WHERE clause, ``keyset`` compares
    the order key with the two parameters after ``params`` (e.g. ``"AND (created_at, id) < ($3, $4) "``).
    Two statements rather than ``$3 IS NULL OR ...``: each keeps a plan that walks its index in
    order and stops at the limit."""
    if after is None:
        return await conn.fetch(select + order, *params)
    return await conn.fetch(select + keyset + order, *params, *after)
