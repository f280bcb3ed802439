"""The shared edge: request ids, problem+json for every error, parsing, logs without secrets."""
import io
import json
import logging

import pytest
from pydantic import Field

from shared.config import BaseServiceSettings
from shared.errors import Conflict
from shared.logging import JsonFormatter
from shared.web import RequestModel, base_app, json_response, parse_body, parse_query


class Thing(RequestModel):
    name: str = Field(min_length=1, max_length=10)
    count: int = 1


def make_app():
    app = base_app(BaseServiceSettings(service_name="edge-test", max_body_bytes=1024 * 1024))

    async def create(request):
        thing = await parse_body(request, Thing)
        return json_response(thing.model_dump(), status=201)

    async def conflict(request):
        raise Conflict("already there")

    async def boom(request):
        raise RuntimeError("SELECT secret FROM users -- internals")

    async def listing(request):
        query = parse_query(request, Thing)
        return json_response(query.model_dump())

    app.router.add_post("/things", create)
    app.router.add_get("/things", listing)
    app.router.add_get("/conflict", conflict)
    app.router.add_get("/boom", boom)
    return app


@pytest.fixture
async def client(aiohttp_client):
    return await aiohttp_client(make_app())


async def problem(resp, status):
    assert resp.status == status
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    body = await resp.json(content_type=None)
    assert body["status"] == status
    assert body["request_id"] == resp.headers["X-Request-ID"]
    assert {"type", "title", "detail"} <= body.keys()
    return body


async def test_valid_body_is_accepted(client):
    resp = await client.post("/things", json={"name": "a", "count": 2})
    assert resp.status == 201
    assert await resp.json() == {"name": "a", "count": 2}


async def test_unknown_route_is_problem_404(client):
    await problem(await client.get("/nowhere"), 404)


async def test_wrong_method_is_problem_405_with_allow(client):
    resp = await client.delete("/things")
    await problem(resp, 405)
    assert "POST" in resp.headers["Allow"]


async def test_body_over_limit_is_413(client):
    resp = await client.post("/things", data=b"{" + b" " * (1024 * 1024 + 10) + b"}",
                             headers={"Content-Type": "application/json"})
    await problem(resp, 413)


async def test_chunked_body_over_limit_is_413(client):
    async def gen():
        for _ in range(20):
            yield b" " * 65536
        yield b"{}"
    resp = await client.post("/things", data=gen(), headers={"Content-Type": "application/json"})
    await problem(resp, 413)


async def test_non_json_is_415(client):
    await problem(await client.post("/things", data="name=a", headers={"Content-Type": "text/plain"}), 415)


async def test_malformed_json_is_400(client):
    await problem(await client.post("/things", data="{bad", headers={"Content-Type": "application/json"}), 400)


async def test_validation_is_422_with_field_errors(client):
    body = await problem(await client.post("/things", json={"name": "", "count": "x", "extra": 1}), 422)
    fields = {e["field"] for e in body["errors"]}
    assert fields == {"name", "count", "extra"}
    assert all(e["message"] for e in body["errors"])


async def test_a_field_named_with_a_nul_is_named_without_it(client):
    # The client names the field (a query parameter, a body key): the answer never carries a NUL.
    for resp in (await client.get("/things?name=a&ex%00tra=x"), await client.get("/things?name=a&ex%00tra=x%00"),
                 await client.post("/things", data=json.dumps({"name": "a", "ex\u0000tra": "x\u0000"}),
                                   headers={"Content-Type": "application/json"})):
        text = await resp.text()
        assert resp.status == 422 and "\\u0000" not in text and "\x00" not in text, text
        assert [e["field"] for e in json.loads(text)["errors"]] in (["ex\ufffdtra"], ["body"]), text


async def test_non_object_json_is_422(client):
    await problem(await client.post("/things", json=[1, 2]), 422)


async def test_domain_error_is_rendered(client):
    body = await problem(await client.get("/conflict"), 409)
    assert body["detail"] == "already there"


async def test_500_hides_internals(client):
    resp = await client.get("/boom")
    body = await problem(resp, 500)
    text = json.dumps(body)
    assert "SELECT" not in text and "RuntimeError" not in text and "Traceback" not in text


async def test_sane_request_id_is_echoed(client):
    resp = await client.get("/conflict", headers={"X-Request-ID": "client-id-12345"})
    assert resp.headers["X-Request-ID"] == "client-id-12345"
    assert (await resp.json(content_type=None))["request_id"] == "client-id-12345"


@pytest.mark.parametrize("bad", ["short", "x" * 200, "has space in it", "semi;colon;injection"])
async def test_insane_request_id_is_replaced(client, bad):
    resp = await client.get("/conflict", headers={"X-Request-ID": bad})
    rid = resp.headers["X-Request-ID"]
    assert rid != bad and len(rid) == 32


async def test_request_log_line_has_fields_and_no_secrets(client):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("edge-test"))
    root = logging.getLogger()
    root.addHandler(handler)
    old = root.level
    root.setLevel(logging.INFO)
    try:
        token = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
        await client.post("/things", json={"name": "a"}, headers={
            "Authorization": f"Bearer {token}", "X-Request-ID": "log-test-123456"})
        await client.get("/boom", headers={"Authorization": f"Bearer {token}"})
    finally:
        root.removeHandler(handler)
        root.setLevel(old)
    out = stream.getvalue()
    assert token not in out and "Bearer" not in out
    lines = [json.loads(line) for line in out.splitlines()]
    req = next(line for line in lines if line.get("request_id") == "log-test-123456" and line["msg"] == "request")
    assert req["service"] == "edge-test"
    assert req["method"] == "POST" and req["route"] == "/things" and req["status"] == 201
    assert isinstance(req["duration_ms"], float)


async def test_formatter_redacts_secret_fields():
    record = logging.LogRecord("x", logging.INFO, "f", 1, "login for %s", ("a@b.c",), None)
    record.password = "hunter2hunter2"
    record.headers = {"Authorization": "Bearer abc.def.ghi", "Accept": "x"}
    out = JsonFormatter("svc").format(record)
    assert "hunter2" not in out and "abc.def.ghi" not in out
    assert json.loads(out)["headers"]["Accept"] == "x"


async def test_formatter_keeps_only_the_prefix_of_an_api_key():
    key = "sk_" + "AbC-_9" * 8
    record = logging.LogRecord("x", logging.INFO, "f", 1, "resolving %s", (key,), None)
    record.detail = {"note": f"key={key}"}
    out = json.loads(JsonFormatter("svc").format(record))
    assert out["msg"] == f"resolving {key[:12]}[redacted]" and out["detail"]["note"] == f"key={key[:12]}[redacted]"


async def test_health_live_and_metrics(client):
    assert (await client.get("/health/live")).status == 200
    await client.get("/conflict")
    text = await (await client.get("/metrics")).text()
    assert 'http_requests_total{method="GET",route="/conflict",service="edge-test",status="409"}' in text
    assert "http_request_duration_seconds_bucket" in text


async def test_dependency_outage_is_503_not_500(aiohttp_client):
    import asyncpg

    app = base_app(BaseServiceSettings(service_name="dep-test"))

    async def pg_gone(request):
        # A real connection attempt to a port where nothing listens.
        await asyncpg.connect("postgresql://x@127.0.0.1:1/x", timeout=1)
    app.router.add_get("/pg", pg_gone)
    client = await aiohttp_client(app)
    resp = await client.get("/pg")
    body = await problem(resp, 503)
    assert resp.headers["Retry-After"] == "1" and "127.0.0.1" not in body["detail"]


def test_development_secrets_are_named_but_real_ones_are_not(monkeypatch):
    from pydantic import SecretStr
    from pydantic_settings import SettingsConfigDict

    class Svc(BaseServiceSettings):
        model_config = SettingsConfigDict(env_prefix="SVC_")
        cursor_secret: SecretStr = SecretStr("dev-cursor-secret")

    monkeypatch.delenv("INTERNAL_API_TOKEN", raising=False)
    assert set(Svc().development_secrets()) == {"INTERNAL_API_TOKEN", "SVC_CURSOR_SECRET"}
    monkeypatch.setenv("INTERNAL_API_TOKEN", "a-real-long-random-value")
    monkeypatch.setenv("SVC_CURSOR_SECRET", "another-real-value")
    assert Svc().development_secrets() == []
