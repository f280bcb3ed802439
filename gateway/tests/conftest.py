"""Gateway fixtures: real upstream aiohttp apps on ephemeral ports that echo what reached them,
a real JWKS server (shared.testing.TokenFactory), Redis DB 2, and a factory for gateways."""
from __future__ import annotations

import asyncio
import hashlib
import uuid

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.config import Settings
from shared import redis_keys
from shared.testing import TokenFactory, redis_url

REDIS_URL = redis_url(2)
INTERNAL_TOKEN = "gateway-test-internal-token"


def echo_app(name: str) -> web.Application:
    """An upstream that answers with what it received (method, path, headers, body digest)."""
    app = web.Application(client_max_size=8 * 1024 * 1024)

    async def ready(request):
        return web.json_response({"status": "ok"})

    async def slow(request):
        await asyncio.sleep(float(request.query.get("s", "2")))
        return web.json_response({"upstream": name, "slow": True})

    async def big(request):
        # A chunked answer larger than the gateway's buffering threshold: streamed through.
        resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for i in range(64):
            await resp.write(bytes([i]) * 16384)
        await resp.write_eof()
        return resp

    async def echo(request):
        body = await request.read()
        return web.json_response({
            "upstream": name, "method": request.method, "path": request.path,
            "raw_path": request.rel_url.raw_path, "query": request.query_string,
            "headers": [[k, v] for k, v in request.headers.items()],
            "body_len": len(body), "body_sha256": hashlib.sha256(body).hexdigest(),
        }, headers={"Access-Control-Allow-Origin": "*", "X-Upstream": name, "Server": "upstream/1"})

    app.router.add_get("/health/ready", ready)
    app.router.add_get("/v1/tickets/slow", slow)
    app.router.add_get("/v1/tickets/big", big)
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


async def start_upstream(name: str) -> TestServer:
    server = TestServer(echo_app(name))
    await server.start_server()
    return server


def base_url(server: TestServer) -> str:
    return str(server.make_url("")).rstrip("/")


@pytest.fixture(scope="session", autouse=True)
async def migrated_test_database():
    """The gateway has no database: the root fixture that migrates every schema is not needed
    here (and another service's migration in progress must not fail the gateway's tests)."""
    yield


@pytest.fixture(scope="session")
def tokens(token_factory):
    return token_factory


@pytest.fixture(scope="session")
async def upstreams():
    servers = {name: await start_upstream(name) for name in ("auth", "tenant", "ticket")}
    yield servers
    for s in servers.values():
        await s.close()


@pytest.fixture
async def redis_db():
    client = aioredis.Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


def gateway_settings(tokens: TokenFactory, upstreams: dict, **overrides) -> Settings:
    values = dict(
        jwks_url=tokens.jwks_url, jwt_issuer=tokens.issuer, jwt_audience=tokens.audience,
        redis_url=REDIS_URL, internal_api_token=INTERNAL_TOKEN,
        auth_upstreams=base_url(upstreams["auth"]), tenant_upstreams=base_url(upstreams["tenant"]),
        ticket_upstreams=base_url(upstreams["ticket"]),
        rate_limit_public=1000, rate_limit_user=1000, cors_origins="https://app.example.com",
        # Each test's own clients share 127.0.0.1: a unique key prefix per test is not possible
        # for addresses, so the public limit is reset by the factory instead.
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def make_gateway(tokens, upstreams, redis_db):
    clients: list[TestClient] = []
    await redis_db.delete("rl:ip:127.0.0.1", redis_keys.rate_bad_token("127.0.0.1"))
    # auth-service has rebuilt the revocation state (no auth-service runs in this suite).
    await redis_db.set(redis_keys.REVOCATION_READY, b"1")

    async def make(**overrides) -> TestClient:
        client = TestClient(TestServer(create_app(gateway_settings(tokens, upstreams, **overrides))))
        await client.start_server()
        clients.append(client)
        return client
    yield make
    for c in clients:
        await c.close()
    await redis_db.delete("rl:ip:127.0.0.1", redis_keys.rate_bad_token("127.0.0.1"))


@pytest.fixture
async def gateway(make_gateway) -> TestClient:
    return await make_gateway()


@pytest.fixture
def bearer(tokens):
    def make(**claims) -> dict[str, str]:
        claims.setdefault("user_id", uuid.uuid4())
        return {"Authorization": f"Bearer {tokens.mint(**claims)}"}
    return make


def echoed_headers(data: dict) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for k, v in data["headers"]:
        out.setdefault(k.lower(), []).append(v)
    return out


@pytest.fixture(scope="session")
def upstream_app():
    """The echo upstream's factory, for tests that run their own replicas."""
    return echo_app


@pytest.fixture
def settings_for(tokens, upstreams):
    def make(**overrides) -> Settings:
        return gateway_settings(tokens, upstreams, **overrides)
    return make
