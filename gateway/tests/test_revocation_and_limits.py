"""Revocation keys (shared/README.md) and rate limits, decided in one Redis round trip."""
import time
import uuid

import pytest


def auth(tokens, **claims):
    return {"Authorization": f"Bearer {tokens.mint(**claims)}"}


async def test_revoked_session_is_refused_even_when_the_token_is_cached(gateway, tokens, redis_db):
    sid = uuid.uuid4()
    headers = auth(tokens, session_id=sid)
    assert (await gateway.get("/v1/tickets", headers=headers)).status == 200   # verified and cached
    await redis_db.set(f"rv:sid:{sid}", 1, ex=60)
    resp = await gateway.get("/v1/tickets", headers=headers)
    assert resp.status == 401
    assert "revoked" in (await resp.json())["detail"]
    # Another session of the same user is unaffected.
    assert (await gateway.get("/v1/tickets", headers=auth(tokens))).status == 200


async def test_role_change_makes_older_tokens_of_that_user_and_org_stale(gateway, tokens, redis_db):
    user, org = uuid.uuid4(), uuid.uuid4()
    old = auth(tokens, user_id=user, tenant_id=org, role="admin")
    other_org = auth(tokens, user_id=user, tenant_id=uuid.uuid4(), role="admin")
    assert (await gateway.get("/v1/tickets", headers=old)).status == 200
    time.sleep(0.002)
    await redis_db.set(f"rv:ut:{user}:{org}", int(time.time() * 1000), ex=60)
    time.sleep(0.002)
    assert (await gateway.get("/v1/tickets", headers=old)).status == 401
    assert (await gateway.get("/v1/tickets", headers=other_org)).status == 200
    fresh = auth(tokens, user_id=user, tenant_id=org, role="agent")   # issued after the change
    assert (await gateway.get("/v1/tickets", headers=fresh)).status == 200


async def test_a_changed_custom_role_makes_every_older_token_carrying_it_stale(gateway, tokens, redis_db):
    org = uuid.uuid4()
    perms = ["tickets:read_all", "tickets:triage"]
    a = auth(tokens, tenant_id=org, role="Triage", perms=perms)
    b = auth(tokens, tenant_id=org, role="Triage", perms=perms)
    other_role = auth(tokens, tenant_id=org, role="Billing", perms=perms)
    other_org = auth(tokens, tenant_id=uuid.uuid4(), role="Triage", perms=perms)
    builtin = auth(tokens, tenant_id=org, role="agent")
    assert (await gateway.get("/v1/tickets", headers=a)).status == 200
    time.sleep(0.002)
    await redis_db.set(f"rv:r:{org}:Triage", int(time.time() * 1000), ex=60)
    time.sleep(0.002)
    assert (await gateway.get("/v1/tickets", headers=a)).status == 401
    assert (await gateway.get("/v1/tickets", headers=b)).status == 401
    for headers in (other_role, other_org, builtin, auth(tokens, tenant_id=org, role="Triage", perms=perms)):
        assert (await gateway.get("/v1/tickets", headers=headers)).status == 200
    # built-in roles never change, so their tokens are not checked against a role mark at all
    await redis_db.set(f"rv:r:{org}:agent", int(time.time() * 1000) + 60_000, ex=60)
    assert (await gateway.get("/v1/tickets", headers=auth(tokens, tenant_id=org, role="agent"))).status == 200


async def test_deleted_organization_makes_every_older_token_for_it_stale(gateway, tokens, redis_db):
    org = uuid.uuid4()
    a, b = auth(tokens, tenant_id=org, role="owner"), auth(tokens, tenant_id=org, role="member")
    assert (await gateway.get("/v1/organizations", headers=a)).status == 200
    time.sleep(0.002)
    await redis_db.set(f"rv:t:{org}", int(time.time() * 1000), ex=60)
    assert (await gateway.get("/v1/organizations", headers=a)).status == 401
    assert (await gateway.get("/v1/tickets", headers=b)).status == 401
    assert (await gateway.get("/v1/tickets", headers=auth(tokens, tenant_id=uuid.uuid4()))).status == 200


async def test_rate_limit_headers_and_429_per_user(make_gateway, tokens):
    gw = await make_gateway(rate_limit_user=3, rate_limit_window_s=30)
    user = uuid.uuid4()
    seen = []
    for _ in range(3):
        resp = await gw.get("/v1/tickets", headers=auth(tokens, user_id=user))  # several tokens, one user
        assert resp.status == 200
        assert resp.headers["RateLimit-Limit"] == "3"
        assert 1 <= int(resp.headers["RateLimit-Reset"]) <= 30
        seen.append(int(resp.headers["RateLimit-Remaining"]))
    assert seen == [2, 1, 0]
    resp = await gw.get("/v1/tickets", headers=auth(tokens, user_id=user))
    assert resp.status == 429
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    assert 1 <= int(resp.headers["Retry-After"]) <= 30
    assert resp.headers["RateLimit-Remaining"] == "0"
    assert (await resp.json())["status"] == 429
    # Another user has their own budget.
    assert (await gw.get("/v1/tickets", headers=auth(tokens))).status == 200


async def test_rate_limit_is_shared_by_gateway_replicas(make_gateway, tokens):
    a = await make_gateway(rate_limit_user=2)
    b = await make_gateway(rate_limit_user=2)
    headers = auth(tokens)
    assert (await a.get("/v1/tickets", headers=headers)).status == 200
    assert (await b.get("/v1/tickets", headers=headers)).status == 200
    assert (await a.get("/v1/tickets", headers=headers)).status == 429


async def test_public_routes_are_limited_per_client_address(make_gateway):
    gw = await make_gateway(rate_limit_public=2)
    for _ in range(2):
        resp = await gw.post("/v1/auth/login", json={"email": "x@example.com", "password": "p"})
        assert resp.status == 200
        assert resp.headers["RateLimit-Limit"] == "2"
    resp = await gw.post("/v1/auth/login", json={"email": "x@example.com", "password": "p"})
    assert resp.status == 429
    assert int(resp.headers["Retry-After"]) >= 1


async def test_local_routes_are_not_rate_limited(make_gateway):
    gw = await make_gateway(rate_limit_public=1)
    for _ in range(3):
        assert (await gw.get("/health/live")).status == 200
        assert (await gw.get("/openapi.json")).status == 200


@pytest.fixture
async def dead_redis_gateway(make_gateway):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()   # nothing listens here: connections are refused
    return await make_gateway(redis_url=f"redis://127.0.0.1:{port}/0", rate_limit_user=2, rate_limit_public=2)


async def test_redis_down_reads_pass_writes_refused_never_500(dead_redis_gateway, tokens):
    from gateway.limits import REDIS_DOWN
    gw = dead_redis_gateway
    allowed_before = REDIS_DOWN.labels("allowed")._value.get()
    headers = auth(tokens)
    started = time.monotonic()
    resp = await gw.get("/v1/tickets", headers=headers)
    assert resp.status == 200
    resp = await gw.post("/v1/tickets", headers=headers, json={"title": "t"})
    assert resp.status == 503
    assert resp.headers["Retry-After"]
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    # Public routes stay open (login must keep working), limited per gateway replica.
    assert (await gw.post("/v1/auth/login", json={})).status == 200
    assert time.monotonic() - started < 2.0
    assert REDIS_DOWN.labels("allowed")._value.get() >= allowed_before + 2
    # The in-process fallback still limits.
    assert (await gw.get("/v1/tickets", headers=headers)).status == 200
    assert (await gw.get("/v1/tickets", headers=headers)).status == 429
    ready = await gw.get("/health/ready")
    assert ready.status == 200                 # still serving: degraded, not unready
    assert "redis" in (await ready.json())["degraded"]


async def test_redis_down_writes_can_be_configured_open(make_gateway, tokens):
    gw = await make_gateway(redis_url="redis://127.0.0.1:1/0", redis_down_writes="open")
    resp = await gw.post("/v1/tickets", headers=auth(tokens), json={"title": "t"})
    assert resp.status == 200
