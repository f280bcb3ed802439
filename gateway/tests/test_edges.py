"""What crosses the edge: trusted headers only, body size and type, CORS, security headers."""
import hashlib

import pytest

from shared.web import pick_request_id

INTERNAL_TOKEN = "gateway-test-internal-token"

SPOOFED = {
    "X-Forwarded-For": "6.6.6.6", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http",
    "Forwarded": "for=6.6.6.6", "X-Real-IP": "6.6.6.6", "X-Client-IP": "6.6.6.6",
    "X-Internal-Token": "guessed", "X-User-Id": "someone", "X-User-Role": "owner", "X-Tenant-Id": "t",
    "X-Original-URL": "/internal/organizations", "X-HTTP-Method-Override": "DELETE",
    "True-Client-IP": "6.6.6.6", "X-Auth-Request-User": "root",
}


def received(data):
    out = {}
    for k, v in data["headers"]:
        out.setdefault(k.lower(), []).append(v)
    return out


async def test_identity_headers_from_clients_are_replaced(gateway, bearer):
    resp = await gateway.get("/v1/tickets", headers={**bearer(), **SPOOFED, "X-Request-ID": "bad id with spaces"})
    assert resp.status == 200
    got = received(await resp.json())
    for name in SPOOFED:
        if name.lower() not in ("x-client-ip", "x-internal-token"):
            assert name.lower() not in got, name
    assert got["x-client-ip"] == ["127.0.0.1"]
    assert got["x-internal-token"] == [INTERNAL_TOKEN]
    rid = got["x-request-id"][0]
    assert rid != "bad id with spaces" and rid == resp.headers["X-Request-ID"]
    assert got["authorization"][0].startswith("Bearer ")   # services verify the token themselves
    assert "internal" not in got.get("x-upstream", [""])[0]


async def test_sane_request_id_is_kept_end_to_end(gateway, bearer):
    rid = "req-1234567890abcdef"
    resp = await gateway.get("/v1/tickets", headers={**bearer(), "X-Request-ID": rid})
    assert resp.headers["X-Request-ID"] == rid
    assert received(await resp.json())["x-request-id"] == [rid]
    assert pick_request_id(rid) == rid


async def test_forwarded_for_is_believed_only_from_trusted_proxies(make_gateway, bearer):
    untrusted = await make_gateway(trusted_proxies="10.0.0.0/8")
    resp = await untrusted.get("/v1/tickets", headers={**bearer(), "X-Forwarded-For": "1.2.3.4"})
    assert received(await resp.json())["x-client-ip"] == ["127.0.0.1"]
    trusted = await make_gateway(trusted_proxies="127.0.0.1/32, 10.0.0.0/8")
    resp = await trusted.get("/v1/tickets", headers={**bearer(), "X-Forwarded-For": "9.9.9.9, 1.2.3.4, 10.1.1.1"})
    got = received(await resp.json())
    assert got["x-client-ip"] == ["1.2.3.4"]          # the first hop not one of ours
    assert "x-forwarded-for" not in got


async def test_body_over_one_mebibyte_is_413(gateway, bearer):
    headers = {**bearer(), "Content-Type": "application/json"}
    resp = await gateway.post("/v1/tickets", data=b"x" * (1024 * 1024 + 1), headers=headers)
    assert resp.status == 413
    assert resp.headers["Content-Type"].startswith("application/problem+json")


async def test_chunked_body_over_the_limit_is_413_while_streaming(gateway, bearer):
    async def chunks():
        for _ in range(40):
            yield b"x" * 32768    # 1.25 MiB, no Content-Length
    headers = {**bearer(), "Content-Type": "application/json"}
    resp = await gateway.post("/v1/tickets", data=chunks(), headers=headers)
    assert resp.status == 413
    assert (await resp.json())["status"] == 413


@pytest.mark.parametrize("size", [0, 1, 65536, 65537, 300_000])
@pytest.mark.parametrize("chunked", [False, True])
async def test_bodies_arrive_upstream_whole(gateway, bearer, size, chunked):
    """A body streamed through the gateway, empty, small, around 64 KiB or larger, with a
    Content-Length or chunked: every byte arrives, and the upstream sees the length the client
    announced."""
    body = bytes(range(256)) * (size // 256) + bytes(size % 256)
    if chunked:
        async def chunks():
            for i in range(0, size, 40_000):
                yield body[i:i + 40_000]
        data = chunks()
    else:
        data = body
    resp = await gateway.post("/v1/tickets", data=data, headers={**bearer(), "Content-Type": "application/json"})
    assert resp.status == 200
    echoed = await resp.json()
    assert (echoed["body_len"], echoed["body_sha256"]) == (size, hashlib.sha256(body).hexdigest())
    lengths = [v for k, v in echoed["headers"] if k.lower() == "content-length"]
    if not chunked:
        assert lengths == [str(size)]


async def test_body_at_the_limit_passes(gateway, bearer):
    body = b'"' + b"x" * (1024 * 1024 - 2) + b'"'
    resp = await gateway.put("/v1/tickets/x", data=body, headers={**bearer(), "Content-Type": "application/json"})
    assert resp.status == 200
    assert (await resp.json())["body_len"] == 1024 * 1024


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
async def test_non_json_body_is_415(gateway, bearer, content_type):
    headers = {**bearer()}
    if content_type:
        headers["Content-Type"] = content_type
    resp = await gateway.patch("/v1/tickets/x", data=b"title=x", headers=headers)
    assert resp.status == 415
    assert resp.headers["Content-Type"].startswith("application/problem+json")


async def test_json_variants_and_empty_bodies_pass(gateway, bearer):
    resp = await gateway.post("/v1/tickets", data=b"{}", headers={**bearer(),
                              "Content-Type": "application/merge-patch+json; charset=utf-8"})
    assert resp.status == 200
    resp = await gateway.post("/v1/auth/logout", headers=bearer())      # no body at all
    assert resp.status == 200


async def test_cors_preflight_is_answered_at_the_gateway(gateway):
    resp = await gateway.options("/v1/tickets", headers={
        "Origin": "https://app.example.com", "Access-Control-Request-Method": "PATCH",
        "Access-Control-Request-Headers": "authorization, content-type, if-match"})
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "PATCH" in resp.headers["Access-Control-Allow-Methods"]
    assert "If-Match" in resp.headers["Access-Control-Allow-Headers"]
    assert "Origin" in resp.headers["Vary"]


async def test_cors_refuses_unlisted_origins(gateway, bearer):
    resp = await gateway.options("/v1/tickets", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
    assert resp.status == 403
    assert "Access-Control-Allow-Origin" not in resp.headers
    resp = await gateway.get("/v1/tickets", headers={**bearer(), "Origin": "https://evil.example"})
    assert resp.status == 200
    # The echo upstream sends "Access-Control-Allow-Origin: *": the gateway does not let it through.
    assert "Access-Control-Allow-Origin" not in resp.headers


async def test_cors_headers_on_allowed_origin(gateway, bearer):
    resp = await gateway.get("/v1/tickets", headers={**bearer(), "Origin": "https://app.example.com"})
    assert resp.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "RateLimit-Remaining" in resp.headers["Access-Control-Expose-Headers"]
    resp = await gateway.get("/v1/tickets", headers={"Origin": "https://app.example.com"})
    assert resp.status == 401   # errors carry CORS headers too, so a browser can read them
    assert resp.headers["Access-Control-Allow-Origin"] == "https://app.example.com"


@pytest.mark.parametrize("path,authed", [("/v1/tickets", True), ("/v1/tickets", False), ("/health/live", False),
                                         ("/openapi.json", False), ("/nowhere", False)])
async def test_security_headers_everywhere(gateway, bearer, path, authed):
    resp = await gateway.get(path, headers=bearer() if authed else {})
    h = resp.headers
    assert h["X-Content-Type-Options"] == "nosniff"
    assert h["X-Frame-Options"] == "DENY"
    assert h["Referrer-Policy"] == "no-referrer"
    assert h["Content-Security-Policy"].startswith("default-src 'none'")
    assert "frame-ancestors 'none'" in h["Content-Security-Policy"]
    assert h["Strict-Transport-Security"].startswith("max-age=")
    assert "aiohttp" not in h.get("Server", "")


async def test_hsts_can_be_turned_off(make_gateway):
    gw = await make_gateway(hsts="")
    assert "Strict-Transport-Security" not in (await gw.get("/health/live")).headers
