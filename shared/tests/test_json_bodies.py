"""Hostile request bodies: whatever the bytes, the body parser answers a value or a 400, never
anything else (README "Request bodies"). Fuzzed with hypothesis over arbitrary bytes and JSON
shapes, with bounded example counts so the suite stays fast."""
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import Field

from shared.config import BaseServiceSettings
from shared.errors import BadRequest, ValidationFailed
from shared.web import MAX_JSON_DEPTH, RequestModel, base_app, decode_json_body, json_response, parse_body

FUZZ = settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))

HOSTILE = {
    "deep-arrays": b"[" * 50_000,
    "deep-objects": b'{"a":' * 20_000,
    "deep-balanced": b"[" * 5_000 + b"]" * 5_000,
    "just-too-deep": b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1),
    "huge-int": b"1" * 100_000,
    "int-past-64-bits": b'{"count": 9223372036854775808}',
    "huge-exponent": b'{"count": 1e999}',
    "nan": b'{"count": NaN}',
    "infinity": b'{"count": -Infinity}',
    "latin-1": '{"name": "café"}'.encode("latin-1"),
    "utf-16": '{"name": "x"}'.encode("utf-16"),
    "utf-8-bom": b"\xef\xbb\xbf{}",
    "overlong-utf-8": b'{"name": "\xc0\xaf"}',
    "truncated": b'{"name": "x"',
    "empty": b"",
    "nul-bytes": b"\x00" * 64,
}


# Valid JSON that PostgreSQL text cannot hold: 422 naming the field.
UNSTORABLE = {
    "lone-surrogate": (b'{"name": "\\ud800"}', "name"),
    "lone-surrogate-key": (b'{"\\udfff": 1}', "body"),
    "nul-in-string": (b'{"name": "a\\u0000b"}', "name"),
    "nul-deep": (b'{"a": [1, {"b": "\\u0000"}]}', "a.1.b"),
}
REFUSED = (BadRequest, ValidationFailed)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_body_is_a_400(name):
    with pytest.raises(BadRequest):
        decode_json_body(HOSTILE[name])


@pytest.mark.parametrize("name", sorted(UNSTORABLE))
def test_unstorable_text_is_a_422_naming_the_field(name):
    raw, field = UNSTORABLE[name]
    with pytest.raises(ValidationFailed) as exc:
        decode_json_body(raw)
    assert [e.field for e in exc.value.errors] == [field]


def test_limits_are_inclusive():
    ok = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    assert decode_json_body(ok) is not None
    assert decode_json_body(b"[9223372036854775807, -9223372036854775808, 1.5e300]") == [
        2 ** 63 - 1, -(2 ** 63), 1.5e300]
    # Brackets inside strings are text, not nesting; a valid surrogate pair is fine.
    assert decode_json_body(json.dumps({"a": "[" * 1000 + "{" * 1000}).encode())["a"].startswith("[[")
    assert decode_json_body(b'"\\ud83d\\ude00"') == "\U0001F600"


@FUZZ
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_give_a_value_or_a_400(raw):
    try:
        decode_json_body(raw)
    except REFUSED:
        pass


def _json_shapes(max_leaves=60):
    scalars = (st.none() | st.booleans() | st.integers(min_value=-(2 ** 70), max_value=2 ** 70)
               | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20))
    return st.recursive(scalars, lambda kids: st.lists(kids, max_size=4)
                        | st.dictionaries(st.text(max_size=8), kids, max_size=4), max_leaves=max_leaves)


@FUZZ
@given(_json_shapes())
def test_json_shapes_round_trip_or_400(value):
    raw = json.dumps(value).encode()
    try:
        decoded = decode_json_body(raw)
    except REFUSED:
        return
    assert json.dumps(decoded) == json.dumps(value)


@FUZZ
@given(st.integers(min_value=0, max_value=3 * MAX_JSON_DEPTH), st.sampled_from(["[", '{"k":']),
       st.text(max_size=30))
def test_nesting_decides_by_depth(depth, opener, noise):
    closer = "]" if opener == "[" else "}"
    raw = (opener * depth + json.dumps(noise) + closer * depth).encode()
    if depth <= MAX_JSON_DEPTH and "\x00" not in noise:
        assert decode_json_body(raw) is not None or noise == ""
    else:
        with pytest.raises(REFUSED):
            decode_json_body(raw)


@FUZZ
@given(st.binary(max_size=256), st.binary(max_size=64))
def test_mutated_json_gives_a_value_or_a_400(prefix, suffix):
    try:
        decode_json_body(prefix + b'{"name": "ok", "count": [1, {"x": null}]}' + suffix)
    except REFUSED:
        pass


class Thing(RequestModel):
    name: str = Field(min_length=1, max_length=10)
    count: int = 1


@pytest.fixture
async def client(aiohttp_client):
    app = base_app(BaseServiceSettings(service_name="bodies-test", max_body_bytes=1024 * 1024))

    async def create(request):
        return json_response((await parse_body(request, Thing)).model_dump(), status=201)

    app.router.add_post("/things", create)
    return await aiohttp_client(app)


@pytest.mark.parametrize("name", sorted(HOSTILE) + sorted(UNSTORABLE))
async def test_hostile_body_over_http_is_a_problem_400(client, name, caplog):
    raw = HOSTILE[name] if name in HOSTILE else UNSTORABLE[name][0]
    resp = await client.post("/things", data=raw, headers={"Content-Type": "application/json"})
    body = await resp.json(content_type=None)
    assert resp.status == (400 if name in HOSTILE else 422), body
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    assert "Traceback" not in caplog.text and "unhandled error" not in caplog.text


@pytest.mark.parametrize("encoding,raw", [
    ("gzip", b"not gzip at all"),
    ("gzip", __import__("gzip").compress(b"[" * 50_000)),
    ("gzip", __import__("gzip").compress(b" " * (8 * 1024 * 1024))),  # 8 MiB behind 8 KiB: a bomb
    ("deflate", b"\x00\x01"),
    ("br", b"xx"),
    ("zstd", b"{}"),
])
async def test_compressed_bodies_are_415_and_log_no_trace(aiohttp_client, encoding, raw):
    """Request bodies are accepted uncompressed only; a broken one is not a traceback in the log."""
    import io
    import logging

    import aiohttp

    from shared.logging import setup_logging
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    out = io.StringIO()
    setup_logging("bodies-test", "INFO", out)
    try:
        app = base_app(BaseServiceSettings(service_name="bodies-test", max_body_bytes=1024 * 1024))

        async def create(request):
            return json_response((await parse_body(request, Thing)).model_dump(), status=201)
        app.router.add_post("/things", create)
        client = await aiohttp_client(app, connector=aiohttp.TCPConnector(force_close=True))
        resp = await client.post("/things", data=raw, headers={"Content-Type": "application/json",
                                                               "Content-Encoding": encoding})
        if encoding == "gzip":
            assert resp.status == 415, await resp.text()
            assert resp.headers["Content-Type"].startswith("application/problem+json")
        else:
            # An encoding aiohttp cannot decode, or a frame it refuses, is answered by aiohttp's
            # HTTP parser before any handler runs: a plain 400, still never a 5xx.
            assert 400 <= resp.status < 500, await resp.text()
        await client.close()
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    log = out.getvalue()
    assert "Traceback" not in log and '"level": "error"' not in log, log
