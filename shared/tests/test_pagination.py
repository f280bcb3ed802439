"""The one keyset cursor of every list (shared.pagination.KeysetCursors)."""
import base64
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.errors import InvalidCursor
from shared.pagination import KeysetCursors, PageQuery, page, page_json
from shared.web import dumps_json, validate

NOW = datetime(2026, 11, 29, 12, 30, 15, 123456, tzinfo=UTC)


def members(secret: str = "secret-one") -> KeysetCursors:
    return KeysetCursors(secret, "members", datetime, uuid.UUID)


def refused(cursors: KeysetCursors, cursor: str | None, **bound) -> str:
    with pytest.raises(InvalidCursor) as caught:
        cursors.bind(**bound).after(cursor)
    [error] = caught.value.errors
    assert error.field == "cursor"
    assert caught.value.status == 422 and caught.value.code == "invalid_cursor"
    return error.message


def test_a_cursor_names_its_typed_position_and_nothing_else():
    org, last = uuid.uuid4(), uuid.uuid4()
    cursors = members()
    cursor = cursors.bind(org=org).encode([NOW, last])
    assert cursors.bind(org=org).after(cursor) == (NOW, last)
    assert cursors.bind(org=org).after(None) is None
    # Other offsets keep their instant; an int and a str key round-trip typed.
    east = NOW.astimezone(timezone(timedelta(hours=5, minutes=30)))
    assert cursors.bind(org=org).after(cursors.bind(org=org).encode([east, last]))[0] == NOW
    mixed = KeysetCursors("s", "tickets", int, str, uuid.UUID)
    assert mixed.bind().after(mixed.bind().encode([3, "x", last])) == (3, "x", last)
    # Opaque to a client: URL-safe, no padding, the filters' values are not in it.
    assert "=" not in cursor and "+" not in cursor and "/" not in cursor
    assert str(org) not in base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode(errors="replace")


def test_forged_damaged_and_foreign_cursors_are_the_one_problem():
    org = uuid.uuid4()
    cursors = members()
    cursor = cursors.bind(org=org).encode([NOW, uuid.uuid4()])
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    payload, sig = json.loads(raw[:-16]), raw[-16:]
    payload["k"][0] = "2000-01-01T00:00:00+00:00"
    forged = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode() + sig).decode()
    for bad in (forged, "garbage", "", "%%%", cursor[:-2], cursor + "AA", "A" * 500, "eyJrIjpbXX0"):
        refused(cursors, bad, org=org)
    # Another list, another secret: never verifies.
    refused(KeysetCursors("secret-one", "invitations", datetime, uuid.UUID), cursor, org=org)
    refused(members("secret-two"), cursor, org=org)


def test_a_cursor_is_bound_to_the_sort_filters_and_scope_it_was_issued_for():
    org = uuid.uuid4()
    cursors = members()
    cursor = cursors.bind(org=org, sort="-created_at", q=None).encode([NOW, uuid.uuid4()])
    assert cursors.bind(org=org, sort="-created_at", q=None).after(cursor)
    for other in ({"org": uuid.uuid4(), "sort": "-created_at", "q": None},
                  {"org": org, "sort": "created_at", "q": None},
                  {"org": org, "sort": "-created_at", "q": "x"},
                  {"org": org, "sort": "-created_at"}):
        assert "another sort, filter or scope" in refused(cursors, cursor, **other)

    # Bindings are cached by query: values equal as dictionary keys but written differently
    # (1, 1.0, True) still bind apart, and a value that is no key (a list) binds uncached.
    written = [cursors.bind(org=org, n=n).binding for n in (1, 1.0, True, "1", [1], (1,), 1)]
    assert written[:4] == [cursors.bind(org=org, n=n).binding for n in (1, 1.0, True, "1")]
    assert len(set(written[:4])) == 4 and written[4] == written[5] and written[6] == written[0]
    assert "another sort, filter or scope" in refused(
        cursors, cursors.bind(org=org, n=1).encode([NOW, uuid.uuid4()]), org=org, n=True)


def test_values_of_the_wrong_type_are_refused_even_when_signed():
    cursors = members()
    # Signed by us, but not what this list's key is (a naive time, a non-UUID, a bool for an int).
    for values in (["2026-01-01T00:00:00", str(uuid.uuid4())], [NOW.isoformat(), "nope"], [1, str(uuid.uuid4())]):
        refused(cursors, cursors.bind().encode(values))
    ints = KeysetCursors("secret-one", "positions", int)
    refused(ints, ints.bind().encode([True]))
    refused(ints, ints.bind().encode(["1"]))
    with pytest.raises(ValueError):
        cursors.bind().encode([NOW])


def test_page_cuts_the_extra_row_and_points_after_the_last_one():
    cursors = members()
    rows = [(NOW - timedelta(seconds=i), uuid.uuid4()) for i in range(5)]
    bound = cursors.bind(org="o")
    items, cursor = bound.page(rows, 4, lambda r: r)
    assert items == rows[:4]
    assert cursors.bind(org="o").after(cursor) == rows[3]
    assert bound.page(rows[:4], 4, lambda r: r) == (rows[:4], None)


def test_the_list_query_is_one_model_for_every_list():
    assert validate(PageQuery, {}).model_dump() == {"limit": 20, "cursor": None}
    for bad in ({"limit": "0"}, {"limit": "101"}, {"cursor": ""}, {"cursor": "x" * 2001}, {"unknown": "1"}):
        with pytest.raises(Exception) as caught:
            validate(PageQuery, bad)
        assert getattr(caught.value, "status", None) == 422, bad


@pytest.mark.parametrize("items, next_cursor", [
    ([], None), (['{"id":"a","n":1}'], None),
    (['{"id":"a","title":"Zoë \\u0001 \\"q\\""}', '{"id":"b","tags":["ü"],"x":null}'], "eyJrIjpbXX0.c2ln"),
])
def test_a_page_of_json_texts_is_the_page_dumps_json_writes(items, next_cursor):
    """page_json joins items that are JSON texts already (a ticket's stored representation):
    the same bytes as writing the parsed page."""
    assert page_json(items, next_cursor) == dumps_json(page([json.loads(i) for i in items], next_cursor))
