"""Keyset cursors, the one list query and the list envelope of the contract.

Every list of every service pages the same way (API.md, "Conventions"): ``?limit=`` (1..100,
default 20), ``?cursor=`` (opaque), body ``{"items": [...], "next_cursor": "..." | null}``.

A cursor names the position after the last row of a page: the values of the list's order key,
its tie-breaking id last. Its format, the same for every list:

    base64url( JSON {"k": [value, ...], "b": binding} + HMAC-SHA256(list key, JSON)[:16] )

* the list key is derived from the service's cursor secret and the list's *purpose*
  (``"members"``, ``"tickets"``, ...), so a cursor of one list never verifies on another;
* ``b`` is a digest of what the page was asked for besides its position (the sort, every
  filter, the scope such as the organization, the user or the ticket), so a cursor replayed with
  other filters is refused rather than silently paging another selection;
* the values are typed by the list (``datetime`` with its offset, ``UUID``, ``int``, ``str``).

A forged, damaged or foreign cursor, or one bound to other query values, is the one problem
``InvalidCursor`` (422 ``invalid_cursor`` on the field ``cursor``). A cursor is a position, not
a snapshot, and is not meant to be stored: changing the secret or this format invalidates the
cursors issued before.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any, TypeVar
from uuid import UUID

import orjson
from pydantic import Field

from .errors import InvalidCursor
from .web import RequestModel, dumps_json

R = TypeVar("R")
KeyType = type[datetime] | type[UUID] | type[int] | type[str]

CURSOR_MAX_LENGTH = 2000
_SIG_BYTES = 16


class PageQuery(RequestModel):
    """The query of every list; a list with filters extends it (unknown parameters are 422)."""
    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = Field(None, min_length=1, max_length=CURSOR_MAX_LENGTH)


def page(items: list[Any], next_cursor: str | None) -> dict[str, Any]:
    return {"items": items, "next_cursor": next_cursor}


def page_json(items: list[str], next_cursor: str | None) -> bytes:
    """``page(items, next_cursor)`` as shared.web.dumps_json writes it, for items that are JSON
    texts already (rows that keep their own representation): joined, not parsed and written again."""
    return ('{"items":[' + ",".join(items) + '],"next_cursor":').encode() + dumps_json(next_cursor) + b"}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple | frozenset | set):
        items = [_jsonable(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, frozenset | set) else items
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _parse(kind: KeyType, value: Any) -> Any:
    if kind is datetime:
        if not isinstance(value, str):
            raise ValueError
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError
        return moment
    if kind is UUID:
        if not isinstance(value, str):
            raise ValueError
        return UUID(value)
    if kind is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError
        return value
    if not isinstance(value, str):
        raise ValueError
    return value


class KeysetCursors:
    """The cursors of one list: ``KeysetCursors(secret, "members", datetime, UUID)``.

    ``bind(**query)`` names what the page was asked for besides its position (the sort, the
    filters, the scope) and gives the cursors of that query: ``after(cursor)`` is the position
    to read from (None for the first page); ``page(rows, limit, key)`` cuts the ``limit + 1``
    rows a query fetched to ``limit`` and makes the next page's cursor from the last one."""

    def __init__(self, secret: str | bytes, purpose: str, *key: KeyType) -> None:
        if not key:
            raise ValueError("a keyset needs at least one key column")
        secret = secret.encode() if isinstance(secret, str) else secret
        self.purpose, self.key = purpose, key
        self._mac_key = hmac.new(secret, f"cursor:{purpose}".encode(), hashlib.sha256).digest()

    def bind(self, **query: Any) -> BoundCursors:
        # Each value with its type: 1, 1.0 and True are one dictionary key but three bindings.
        items = tuple((k, type(v), v) for k, v in sorted(query.items()))
        try:
            binding = _binding(items)
        except TypeError:  # a value that is no dictionary key (a list): the same digest, uncached
            binding = _binding.__wrapped__(items)
        return BoundCursors(self, binding)

    def _sign(self, raw: bytes) -> bytes:
        return hmac.digest(self._mac_key, raw, "sha256")[:_SIG_BYTES]


@lru_cache(maxsize=4096)
def _binding(items: tuple[tuple[str, type, Any], ...]) -> str:
    """The digest of a query (its items in key order, each with its value's type): a list page
    binds the same few queries over and over (the sort and no filter, most of the time)."""
    raw = json.dumps({k: _jsonable(v) for k, _, v in items}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


class BoundCursors:
    """The cursors of one list for one query (``KeysetCursors.bind``)."""

    def __init__(self, cursors: KeysetCursors, binding: str) -> None:
        self.cursors, self.binding = cursors, binding

    def encode(self, values: Sequence[Any]) -> str:
        key = self.cursors.key
        if len(values) != len(key):
            raise ValueError(f"{self.cursors.purpose}: {len(key)} key values expected, got {len(values)}")
        raw = orjson.dumps({"k": [_jsonable(v) for v in values], "b": self.binding})
        return base64.urlsafe_b64encode(raw + self.cursors._sign(raw)).decode().rstrip("=")

    def after(self, cursor: str | None) -> tuple[Any, ...] | None:
        """The position ``cursor`` names; InvalidCursor unless this list issued it for this query."""
        if cursor is None:
            return None
        try:
            blob = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (ValueError, binascii.Error):
            raise InvalidCursor() from None
        raw, sig = blob[:-_SIG_BYTES], blob[-_SIG_BYTES:]
        if len(blob) <= _SIG_BYTES or not hmac.compare_digest(sig, self.cursors._sign(raw)):
            raise InvalidCursor()
        try:
            payload = orjson.loads(raw)
        except ValueError:  # pragma: no cover - we signed it, so we wrote it
            raise InvalidCursor() from None
        if not isinstance(payload, dict) or payload.get("b") != self.binding:
            raise InvalidCursor("this cursor belongs to another sort, filter or scope of the list")
        values, key = payload.get("k"), self.cursors.key
        if not isinstance(values, list) or len(values) != len(key):
            raise InvalidCursor()
        try:
            return tuple(_parse(kind, value) for kind, value in zip(key, values, strict=True))
        except (ValueError, TypeError):
            raise InvalidCursor() from None

    def page(self, rows: list[R], limit: int, key: Callable[[R], Sequence[Any]]) -> tuple[list[R], str | None]:
        """``rows`` were fetched with ``limit + 1``: the extra row only says a next page exists."""
        if len(rows) <= limit:
            return rows, None
        rows = rows[:limit]
        return rows, self.encode(key(rows[-1]))
