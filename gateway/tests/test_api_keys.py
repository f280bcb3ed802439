"""API keys at the gateway: resolved once by auth-service's internal route (here a real HTTP
server answering like it, with tokens minted by the test key), forwarded upstream as the minted
token, revoked through rv:ak at the next request, rate limited per key, refused on /v1/auth/*;
and staff access: reads pass, writes 403, rv:st revokes."""
import asyncio
import secrets
import time
import uuid

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.app import GATEWAY
from shared import redis_keys
from shared.permissions import STAFF_PERMISSIONS

from .conftest import INTERNAL_TOKEN, base_url, echoed_headers

PERMS = ["comments:create", "members:read", "tickets:create", "tickets:read_own"]


class FakeAuth:
    """auth-service's two internal API-key routes, over real HTTP, plus the echo of every
    other path (the gateway routes /v1/auth there too)."""

    def __init__(self, tokens):
        self.tokens = tokens
        self.keys: dict[str, tuple[uuid.UUID, uuid.UUID]] = {}   # key -> (key id, org id)
        self.resolves = 0
        self.usage: list[dict] = []
        self.down = False

    def new_key(self, org=None) -> tuple[str, uuid.UUID, uuid.UUID]:
        key, key_id, org = "sk_" + secrets.token_urlsafe(32), uuid.uuid4(), org or uuid.uuid4()
        self.keys[key] = (key_id, org)
        return key, key_id, org

    def app(self) -> web.Application:
        app = web.Application()

        async def resolve(request):
            assert request.headers.get("X-Internal-Token") == INTERNAL_TOKEN
            self.resolves += 1
            await asyncio.sleep(0.05)  # long enough for concurrent requests to pile up
            if self.down:
                return web.json_response({"detail": "down"}, status=503)
            found = self.keys.get((await request.json())["key"])
            if found is None:
                return web.json_response({"detail": "no such key"}, status=404)
            key_id, org = found
            token = self.tokens.mint(user_id=key_id, session_id=key_id, tenant_id=org, perms=PERMS,
                                     akid=str(key_id), ttl_s=300)
            return web.json_response({"access_token": token, "expires_in": 300})

        async def usage(request):
            assert request.headers.get("X-Internal-Token") == INTERNAL_TOKEN
            self.usage.extend((await request.json())["items"])
            return web.Response(status=204)

        async def echo(request):
            return web.json_response({"upstream": "auth", "path": request.path,
                                      "headers": [[k, v] for k, v in request.headers.items()]},
                                     headers={"X-Upstream": "auth"})

        app.router.add_post("/internal/api-keys/resolve", resolve)
        app.router.add_post("/internal/api-keys/usage", usage)
        app.router.add_route("*", "/{tail:.*}", echo)
        return app


@pytest.fixture
async def fake_auth(tokens):
    fake = FakeAuth(tokens)
    server = TestServer(fake.app())
    await server.start_server()
    fake.url = base_url(server)
    yield fake
    await server.close()


@pytest.fixture
async def key_gateway(make_gateway, fake_auth):
    return await make_gateway(auth_upstreams=fake_auth.url, rate_limit_api_key=1000)


def key_auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


async def test_key_is_forwarded_as_its_minted_token_never_as_itself(key_gateway, fake_auth):
    key, key_id, org = fake_auth.new_key()
    resp = await key_gateway.get("/v1/tickets", headers=key_auth(key))
    assert resp.status == 200
    sent = echoed_headers(await resp.json())["authorization"]
    assert len(sent) == 1 and key not in sent[0]
    claims = jwt.decode(sent[0].removeprefix("Bearer "), options={"verify_signature": False})
    assert (claims["akid"], claims["tid"], claims["perms"]) == (str(key_id), str(org), PERMS)
    assert resp.headers["RateLimit-Limit"] == "1000"


async def test_concurrent_first_uses_of_a_key_resolve_it_once(key_gateway, fake_auth):
    for _ in range(3):
        key, _, _ = fake_auth.new_key()
        before = fake_auth.resolves
        answers = await asyncio.gather(*(key_gateway.get("/v1/tickets", headers=key_auth(key)) for _ in range(40)))
        assert [r.status for r in answers] == [200] * 40
        assert fake_auth.resolves - before == 1
        assert (await key_gateway.get("/v1/tickets", headers=key_auth(key))).status == 200
        assert fake_auth.resolves - before == 1   # cached afterwards


async def test_unknown_forged_and_malformed_keys_are_401_and_unknown_ones_not_asked_again(key_gateway, fake_auth):
    unknown = "sk_" + secrets.token_urlsafe(32)
    before = fake_auth.resolves
    for _ in range(5):
        resp = await key_gateway.get("/v1/tickets", headers=key_auth(unknown))
        assert resp.status == 401
        assert (await resp.json())["type"].endswith("/invalid-api-key")
    assert fake_auth.resolves - before == 1
    for bad in ("sk_", "sk_abc def", "sk_" + "a" * 200, "sk_%00", "sk_é"):
        resp = await key_gateway.get("/v1/tickets", headers=key_auth(bad))
        assert resp.status == 401, bad
    assert fake_auth.resolves - before == 1   # malformed keys never reach auth-service


async def test_a_token_carrying_akid_sent_by_a_client_is_refused(key_gateway, tokens):
    key_id = uuid.uuid4()
    forged = tokens.mint(user_id=key_id, session_id=key_id, tenant_id=uuid.uuid4(), perms=PERMS, akid=str(key_id))
    assert (await key_gateway.get("/v1/tickets", headers=key_auth(forged))).status == 401


async def test_revoked_key_is_refused_at_the_next_request_though_cached(key_gateway, fake_auth, redis_db):
    key, key_id, _ = fake_auth.new_key()
    other, _, _ = fake_auth.new_key()
    assert (await key_gateway.get("/v1/tickets", headers=key_auth(key))).status == 200
    await redis_db.set(redis_keys.api_key_revoked(key_id), 1, ex=60)
    resp = await key_gateway.get("/v1/tickets", headers=key_auth(key))
    assert resp.status == 401
    assert (await key_gateway.get("/v1/tickets", headers=key_auth(other))).status == 200


async def test_deleted_organization_stops_its_keys(key_gateway, fake_auth, redis_db):
    key, _, org = fake_auth.new_key()
    assert (await key_gateway.get("/v1/tickets", headers=key_auth(key))).status == 200
    time.sleep(0.002)
    await redis_db.set(redis_keys.org_stale(org), int(time.time() * 1000), ex=60)
    assert (await key_gateway.get("/v1/tickets", headers=key_auth(key))).status == 401


async def test_keys_answer_403_on_user_routes_without_reaching_them(key_gateway, fake_auth):
    key, _, _ = fake_auth.new_key()
    for method, path in (("GET", "/v1/auth/me"), ("GET", "/v1/auth/sessions"), ("POST", "/v1/auth/logout"),
                         ("POST", "/v1/auth/password")):
        resp = await key_gateway.request(method, path, headers=key_auth(key), json={})
        assert resp.status == 403, path
        assert (await resp.json())["type"].endswith("/api-key-not-allowed")
        assert "X-Upstream" not in resp.headers


async def test_keys_are_rate_limited_per_key(make_gateway, fake_auth, redis_db):
    gw = await make_gateway(auth_upstreams=fake_auth.url, rate_limit_api_key=3, rate_limit_window_s=30)
    key, key_id, _ = fake_auth.new_key()
    other, other_id, _ = fake_auth.new_key()
    try:
        statuses = [(await gw.get("/v1/tickets", headers=key_auth(key))).status for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        assert (await gw.get("/v1/tickets", headers=key_auth(other))).status == 200
    finally:
        await redis_db.delete(redis_keys.rate_api_key(key_id), redis_keys.rate_api_key(other_id))


async def test_auth_service_unreachable_for_a_new_key_is_a_fast_503(make_gateway, fake_auth):
    gw = await make_gateway(auth_upstreams="http://127.0.0.1:9", api_key_resolve_timeout_s=1.0)
    key, _, _ = fake_auth.new_key()
    start = time.monotonic()
    resp = await gw.get("/v1/tickets", headers=key_auth(key))
    assert resp.status == 503 and time.monotonic() - start < 2
    fake_auth.down = True
    gw2 = await make_gateway(auth_upstreams=fake_auth.url)
    assert (await gw2.get("/v1/tickets", headers=key_auth(key))).status == 503


async def test_usage_is_reported_off_the_request_path(make_gateway, fake_auth):
    gw = await make_gateway(auth_upstreams=fake_auth.url, api_key_usage_flush_s=0.2)
    key, key_id, _ = fake_auth.new_key()
    sent_at = time.time()
    for _ in range(5):
        assert (await gw.get("/v1/tickets", headers=key_auth(key))).status == 200
    deadline = time.monotonic() + 5
    while not any(i["id"] == str(key_id) for i in fake_auth.usage):
        assert time.monotonic() < deadline, "usage never reported"
        await asyncio.sleep(0.05)
    mine = [i for i in fake_auth.usage if i["id"] == str(key_id)]
    assert len(mine) == 1 and mine[0]["used_at"] >= int(sent_at * 1000) - 1
    assert not gw.app[GATEWAY].keys.used   # reported notes are cleared


async def test_staff_access_reads_pass_writes_403_and_revocation_stops_it(gateway, tokens, redis_db):
    staff_user, org = uuid.uuid4(), uuid.uuid4()
    headers = {"Authorization": "Bearer " + tokens.mint(user_id=staff_user, tenant_id=org, role="staff",
                                                        perms=sorted(STAFF_PERMISSIONS), staff=True)}
    assert (await gateway.get("/v1/tickets", headers=headers)).status == 200
    for method in ("POST", "PATCH", "PUT", "DELETE"):
        resp = await gateway.request(method, "/v1/tickets/x", headers=headers, json={})
        assert resp.status == 403, method
        assert (await resp.json())["type"].endswith("/staff-read-only")
        assert "X-Upstream" not in resp.headers
    time.sleep(0.002)
    await redis_db.set(redis_keys.staff_stale(staff_user), int(time.time() * 1000), ex=60)
    assert (await gateway.get("/v1/tickets", headers=headers)).status == 401
    # The same person's ordinary token is not staff access: unaffected.
    own = {"Authorization": "Bearer " + tokens.mint(user_id=staff_user)}
    assert (await gateway.get("/v1/tickets", headers=own)).status == 200
