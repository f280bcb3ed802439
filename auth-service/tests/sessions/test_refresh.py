"""POST /v1/auth/refresh: rotation, the grace window, reuse detection, concurrency, org switch."""
import asyncio
import hashlib
import uuid

import jwt


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


async def refresh(c, token: str, **extra):
    resp = await c.post("/v1/auth/refresh", json={"refresh_token": token, **extra})
    return resp.status, await resp.json()


async def test_rotation_spends_the_token_and_issues_a_successor(client, signup, admin_db, bearer):
    acct = await signup()
    status, body = await refresh(client, acct.refresh_token)
    assert status == 200
    tokens = body["tokens"]
    assert tokens["refresh_token"] != acct.refresh_token and tokens["token_type"] == "Bearer"
    assert claims_of(tokens["access_token"])["sid"] == claims_of(acct.access_token)["sid"]
    assert (await client.get("/v1/auth/me", headers=bearer(tokens["access_token"]))).status == 200
    # Only hashes are stored.
    rows = await admin_db.fetch("SELECT token_hash, spent_at FROM auth.refresh_token WHERE session_id = $1",
                                uuid.UUID(claims_of(acct.access_token)["sid"]))
    hashes = {bytes(r["token_hash"]): r["spent_at"] for r in rows}
    assert set(hashes) == {hashlib.sha256(t.encode()).digest() for t in (acct.refresh_token, tokens["refresh_token"])}
    assert hashes[hashlib.sha256(acct.refresh_token.encode()).digest()] is not None
    assert hashes[hashlib.sha256(tokens["refresh_token"].encode()).digest()] is None


async def test_the_just_spent_token_answers_with_the_same_successor_within_grace(client, signup):
    acct = await signup()
    _, first = await refresh(client, acct.refresh_token)
    status, again = await refresh(client, acct.refresh_token)
    assert status == 200
    assert again["tokens"]["refresh_token"] == first["tokens"]["refresh_token"]
    # ...and the successor keeps working: the session was not ended.
    status, _ = await refresh(client, first["tokens"]["refresh_token"])
    assert status == 200


async def test_concurrent_refreshes_of_one_token_yield_one_successor(client, signup, admin_db):
    acct = await signup()
    results = await asyncio.gather(*(refresh(client, acct.refresh_token) for _ in range(6)))
    assert [s for s, _ in results] == [200] * 6
    assert len({b["tokens"]["refresh_token"] for _, b in results}) == 1
    sid = uuid.UUID(claims_of(acct.access_token)["sid"])
    assert await admin_db.fetchval("SELECT count(*) FROM auth.refresh_token WHERE session_id = $1", sid) == 2
    assert await admin_db.fetchval("SELECT revoked_at FROM auth.session WHERE id = $1", sid) is None


async def test_reuse_of_an_older_token_revokes_the_whole_session(client, signup, events, redis, bearer):
    acct = await signup()
    sid = claims_of(acct.access_token)["sid"]
    _, b = await refresh(client, acct.refresh_token)
    _, c = await refresh(client, b["tokens"]["refresh_token"])
    # The first token's successor is already spent: presenting it is reuse, not a retry.
    status, problem = await refresh(client, acct.refresh_token)
    assert status == 401 and problem["status"] == 401
    [reused] = await events("auth.refresh_token_reused", sid)
    assert reused["data"] == {"user_id": acct.id, "session_id": sid}
    [revoked] = await events("auth.session_revoked", sid)
    assert revoked["data"]["reason"] == "refresh_token_reused"
    assert await redis.get(f"rv:sid:{sid}") == b"1"
    assert 0 < await redis.ttl(f"rv:sid:{sid}") <= 910
    # Every token of the session is dead: the newest refresh token and the access tokens.
    assert (await refresh(client, c["tokens"]["refresh_token"]))[0] == 401
    assert (await client.get("/v1/auth/me", headers=bearer(c["tokens"]["access_token"]))).status == 401


async def test_the_just_spent_token_after_the_grace_window_is_reuse(make_settings, settings, start_app, signup,
                                                                    events):
    c = await start_app(make_settings(tenant_url=settings.tenant_url, refresh_grace_s=0.3))
    acct = await signup(c=c)
    _, b = await refresh(c, acct.refresh_token)
    await asyncio.sleep(0.4)
    assert (await refresh(c, acct.refresh_token))[0] == 401
    assert (await refresh(c, b["tokens"]["refresh_token"]))[0] == 401
    assert await events("auth.refresh_token_reused", claims_of(acct.access_token)["sid"])


async def test_unknown_or_malformed_refresh_tokens(client):
    assert (await refresh(client, "x" * 43))[0] == 401
    resp = await client.post("/v1/auth/refresh", json={"refresh_token": ""})
    assert resp.status == 422
    resp = await client.post("/v1/auth/refresh", json={})
    assert resp.status == 422


async def test_organization_switch_and_403_for_non_members(client, signup, tenant_client, bearer):
    acct = await signup(organization_name=f"One {uuid.uuid4().hex[:6]}")
    resp = await tenant_client.post("/v1/organizations", json={"name": f"Two {uuid.uuid4().hex[:6]}"},
                                    headers=bearer(acct.access_token))
    second = (await resp.json())["id"]
    status, body = await refresh(client, acct.refresh_token, organization_id=second)
    assert status == 200 and claims_of(body["tokens"]["access_token"])["tid"] == second
    # Without organization_id the session keeps the organization it switched to.
    status, body = await refresh(client, body["tokens"]["refresh_token"])
    assert status == 200 and claims_of(body["tokens"]["access_token"])["tid"] == second
    status, problem = await refresh(client, body["tokens"]["refresh_token"], organization_id=str(uuid.uuid4()))
    assert status == 403
    # A refused switch spends nothing.
    status, _ = await refresh(client, body["tokens"]["refresh_token"])
    assert status == 200


async def test_tenant_down_at_refresh_is_503_and_spends_nothing(make_settings, start_app, client, signup):
    from aiohttp.test_utils import unused_port
    down = await start_app(make_settings(tenant_url=f"http://127.0.0.1:{unused_port()}"))
    acct = await signup()
    assert (await refresh(down, acct.refresh_token))[0] == 503
    assert (await refresh(client, acct.refresh_token))[0] == 200


async def test_sessions_expire_absolutely_and_when_idle(make_settings, settings, start_app, signup):
    absolute = await start_app(make_settings(tenant_url=settings.tenant_url, session_absolute_ttl_s=1))
    idle = await start_app(make_settings(tenant_url=settings.tenant_url, session_idle_ttl_s=1))
    a = await signup(c=absolute)
    b = await signup(c=idle)
    _, a2 = await refresh(absolute, a.refresh_token)
    await asyncio.sleep(1.1)
    assert (await refresh(absolute, a2["tokens"]["refresh_token"]))[0] == 401
    assert (await refresh(idle, b.refresh_token))[0] == 401


async def test_reuse_is_detected_whatever_else_the_request_asks(client, signup, events):
    acct = await signup()
    _, b = await refresh(client, acct.refresh_token)
    await refresh(client, b["tokens"]["refresh_token"])
    status, _ = await refresh(client, acct.refresh_token, organization_id=str(uuid.uuid4()))
    assert status == 401
    assert await events("auth.refresh_token_reused", claims_of(acct.access_token)["sid"])
