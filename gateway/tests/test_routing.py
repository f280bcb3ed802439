"""Routing to the pools, and what never gets routed."""
import pytest


def headers_of(data):
    return {k.lower(): v for k, v in data["headers"]}


@pytest.mark.parametrize("method,path,pool", [
    ("GET", "/v1/auth/me", "auth"),
    ("GET", "/v1/auth/sessions", "auth"),
    ("GET", "/v1/organizations", "tenant"),
    ("GET", "/v1/organizations/0b6f0a7e-93a4-4e0b-9d1e-1b7c3d1f0a11/members", "tenant"),
    ("POST", "/v1/invitations/accept", "tenant"),
    ("GET", "/v1/tickets", "ticket"),
    ("DELETE", "/v1/tickets/0b6f0a7e-93a4-4e0b-9d1e-1b7c3d1f0a11", "ticket"),
])
async def test_prefix_routes_reach_their_pool(gateway, bearer, method, path, pool):
    kw = {"json": {"token": "x"}} if method == "POST" else {}
    resp = await gateway.request(method, path + "?limit=5&cursor=a%2Bb", headers=bearer(), **kw)
    assert resp.status == 200, await resp.text()
    data = await resp.json()
    assert data["upstream"] == pool
    assert data["method"] == method
    assert data["path"] == path
    assert data["query"] == "limit=5&cursor=a%2Bb"


async def test_jwks_and_public_auth_routes_need_no_token(gateway):
    resp = await gateway.get("/.well-known/jwks.json")
    assert resp.status == 200
    assert (await resp.json())["upstream"] == "auth"
    for path in ("/v1/auth/signup", "/v1/auth/login", "/v1/auth/refresh"):
        resp = await gateway.post(path, json={"email": "a@example.com"})
        assert resp.status == 200, path
        assert (await resp.json())["path"] == path


@pytest.mark.parametrize("path", [
    "/internal/users/0b6f0a7e-93a4-4e0b-9d1e-1b7c3d1f0a11/memberships",
    "/internal/organizations",
    "/v1/ticketsX",
    "/v1/tickets/%2e%2e/%2e%2e/internal/organizations",
    "/v1/tickets/..%2F..%2Finternal/organizations",
    "/",
])
async def test_unrouted_paths_are_404_problems(gateway, bearer, path):
    resp = await gateway.get(path, headers=bearer())
    assert resp.status == 404
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    body = await resp.json()
    assert body["status"] == 404 and body["request_id"]
    assert "upstream" not in body


async def test_dot_segments_never_reach_internal(gateway, bearer):
    # A raw ../ path (not normalised by the client library) must not be routed anywhere internal.
    from yarl import URL
    url = URL(str(gateway.make_url("")).rstrip("/") + "/v1/tickets/../../internal/organizations", encoded=True)
    async with gateway.session.get(url, headers=bearer()) as resp:
        if resp.status == 200:
            data = await resp.json()
            assert not data["path"].startswith("/internal")
        else:
            assert resp.status == 404


async def test_upstream_response_headers_and_status_pass_through(gateway, bearer):
    resp = await gateway.get("/v1/tickets", headers=bearer())
    assert resp.headers["X-Upstream"] == "ticket"
    assert resp.headers.get("Server") != "upstream/1"
    assert resp.headers["X-Request-ID"]


async def test_large_upstream_answer_is_streamed_intact(gateway, bearer):
    resp = await gateway.get("/v1/tickets/big", headers=bearer())
    assert resp.status == 200
    body = await resp.read()
    assert len(body) == 64 * 16384
    assert body == b"".join(bytes([i]) * 16384 for i in range(64))


async def test_request_body_is_streamed_to_the_upstream(gateway, bearer):
    import hashlib
    payload = b'{"title": "' + b"x" * 700_000 + b'"}'

    async def chunks():
        for i in range(0, len(payload), 50_000):
            yield payload[i:i + 50_000]
    headers = {**bearer(), "Content-Type": "application/json"}
    resp = await gateway.post("/v1/tickets", data=chunks(), headers=headers)
    assert resp.status == 200, await resp.text()
    data = await resp.json()
    assert data["body_len"] == len(payload)
    assert data["body_sha256"] == hashlib.sha256(payload).hexdigest()
