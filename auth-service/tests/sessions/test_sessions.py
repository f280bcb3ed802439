"""Session listing and revocation, logout, logout-all: refresh tokens stop, access tokens stop
(the rv:sid keys the gateway reads), another user's session is a 404."""
import uuid

import jwt


def sid_of(token: str) -> str:
    return jwt.decode(token, options={"verify_signature": False})["sid"]


async def login(client, acct, **headers):
    resp = await client.post("/v1/auth/login", json={"email": acct.email, "password": acct.password},
                             headers=headers)
    assert resp.status == 200
    return (await resp.json())["tokens"]


async def refresh_status(client, token):
    return (await client.post("/v1/auth/refresh", json={"refresh_token": token})).status


async def test_listing_shows_live_sessions_with_current_flag_and_paginates(client, signup, bearer):
    acct = await signup()
    second = await login(client, acct, **{"User-Agent": "pytest-browser/1.0"})
    third = await login(client, acct)
    resp = await client.get("/v1/auth/sessions", headers=bearer(second["access_token"]))
    assert resp.status == 200
    body = await resp.json()
    assert body["next_cursor"] is None
    items = body["items"]
    assert [i["id"] for i in items] == [sid_of(third["access_token"]), sid_of(second["access_token"]),
                                        sid_of(acct.access_token)]
    assert set(items[0]) == {"id", "created_at", "last_used_at", "user_agent", "device", "ip", "current"}
    assert [i["current"] for i in items] == [False, True, False]
    assert items[1]["user_agent"] == "pytest-browser/1.0" and items[1]["ip"] == "127.0.0.1"
    assert items[1]["created_at"].endswith("Z")

    page1 = await (await client.get("/v1/auth/sessions?limit=2", headers=bearer(second["access_token"]))).json()
    assert len(page1["items"]) == 2 and page1["next_cursor"]
    page2 = await (await client.get(f"/v1/auth/sessions?limit=2&cursor={page1['next_cursor']}",
                                    headers=bearer(second["access_token"]))).json()
    assert [i["id"] for i in page1["items"] + page2["items"]] == [i["id"] for i in items]
    assert page2["next_cursor"] is None
    for bad in ("limit=0", "limit=101", "cursor=forged"):
        resp = await client.get(f"/v1/auth/sessions?{bad}", headers=bearer(second["access_token"]))
        assert resp.status == 422, bad


FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
SAFARI_IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                 "Version/17.1 Mobile/15E148 Safari/604.1")
CHROME_MAC = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/131.0.0.0 Safari/537.36")


async def test_session_list_names_each_device_by_browser_and_os(client, signup, bearer):
    acct = await signup()
    tokens = {}
    for ua in (FIREFOX_WINDOWS, SAFARI_IPHONE, CHROME_MAC, "curl/8.5.0", "zz-unknown-agent"):
        tokens[ua] = await login(client, acct, **{"User-Agent": ua})
    resp = await client.get("/v1/auth/sessions", headers=bearer(tokens[CHROME_MAC]["access_token"]))
    assert resp.status == 200
    by_ua = {i["user_agent"]: i for i in (await resp.json())["items"]}
    assert by_ua[FIREFOX_WINDOWS]["device"] == "Firefox 133 on Windows 10"
    assert by_ua[SAFARI_IPHONE]["device"] == "Mobile Safari 17 on iOS 17.1"
    assert by_ua[CHROME_MAC]["device"] == "Chrome 131 on Mac OS X 10.15"
    assert by_ua["curl/8.5.0"]["device"] == "curl 8"
    assert by_ua["zz-unknown-agent"]["device"] == "Unknown device"
    mine = by_ua[CHROME_MAC]
    assert mine["current"] is True and mine["ip"] == "127.0.0.1"
    assert mine["created_at"].endswith("Z") and mine["last_used_at"].endswith("Z")
    assert [i["current"] for i in by_ua.values()].count(True) == 1


async def test_revoking_one_session_ends_it_and_others_sessions_are_404(client, signup, redis, events, bearer):
    acct = await signup()
    other_device = await login(client, acct)
    sid = sid_of(other_device["access_token"])
    stranger = await signup()
    resp = await client.delete(f"/v1/auth/sessions/{sid}", headers=bearer(stranger.access_token))
    assert resp.status == 404
    assert (await client.get("/v1/auth/me", headers=bearer(other_device["access_token"]))).status == 200

    resp = await client.delete(f"/v1/auth/sessions/{sid}", headers=bearer(acct.access_token))
    assert resp.status == 204
    assert await redis.get(f"rv:sid:{sid}") == b"1"
    assert await refresh_status(client, other_device["refresh_token"]) == 401
    assert (await client.get("/v1/auth/me", headers=bearer(other_device["access_token"]))).status == 401
    [ev] = await events("auth.session_revoked", sid)
    assert ev["data"] == {"user_id": acct.id, "session_id": sid, "reason": "revoked"}
    listed = await (await client.get("/v1/auth/sessions", headers=bearer(acct.access_token))).json()
    ids = [i["id"] for i in listed["items"]]
    assert sid not in ids and sid_of(acct.access_token) in ids
    # Gone now, like one that never existed; a malformed id is a 404 as well.
    assert (await client.delete(f"/v1/auth/sessions/{sid}", headers=bearer(acct.access_token))).status == 404
    assert (await client.delete(f"/v1/auth/sessions/{uuid.uuid4()}", headers=bearer(acct.access_token))).status == 404
    assert (await client.delete("/v1/auth/sessions/not-a-uuid", headers=bearer(acct.access_token))).status == 404


async def test_logout_ends_the_current_session_at_once(client, signup, redis, events, bearer):
    acct = await signup()
    other = await login(client, acct)
    sid = sid_of(acct.access_token)
    resp = await client.post("/v1/auth/logout", headers=bearer(acct.access_token))
    assert resp.status == 204
    assert await redis.get(f"rv:sid:{sid}") == b"1"
    assert 890 < await redis.ttl(f"rv:sid:{sid}") <= 910
    assert await refresh_status(client, acct.refresh_token) == 401
    assert (await client.get("/v1/auth/me", headers=bearer(acct.access_token))).status == 401
    [ev] = await events("auth.session_revoked", sid)
    assert ev["data"]["reason"] == "logout"
    # A retried logout still answers 204; the other session lives on.
    assert (await client.post("/v1/auth/logout", headers=bearer(acct.access_token))).status == 204
    assert await refresh_status(client, other["refresh_token"]) == 200


async def test_logout_all_ends_every_session(client, signup, redis, bearer):
    acct = await signup()
    others = [await login(client, acct) for _ in range(2)]
    resp = await client.post("/v1/auth/logout-all", headers=bearer(others[0]["access_token"]))
    assert resp.status == 204
    for tokens in [{"access_token": acct.access_token, "refresh_token": acct.refresh_token}, *others]:
        assert await redis.get(f"rv:sid:{sid_of(tokens['access_token'])}") == b"1"
        assert await refresh_status(client, tokens["refresh_token"]) == 401
        assert (await client.get("/v1/auth/me", headers=bearer(tokens["access_token"]))).status == 401


async def test_protected_routes_need_a_token(client):
    for method, path in (("GET", "/v1/auth/me"), ("GET", "/v1/auth/sessions"), ("POST", "/v1/auth/logout"),
                         ("POST", "/v1/auth/logout-all"), ("POST", "/v1/auth/password"),
                         ("DELETE", f"/v1/auth/sessions/{uuid.uuid4()}")):
        resp = await client.request(method, path)
        assert resp.status == 401, path
        assert resp.content_type == "application/problem+json"
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")


async def test_redis_down_at_logout_is_503_and_ends_nothing(make_settings, settings, start_app, client, signup,
                                                           bearer):
    from aiohttp.test_utils import unused_port
    c = await start_app(make_settings(tenant_url=settings.tenant_url,
                                      redis_url=f"redis://127.0.0.1:{unused_port()}/1"))
    acct = await signup()
    resp = await c.post("/v1/auth/logout", headers=bearer(acct.access_token))
    assert resp.status == 503
    # Not half-ended: the session is still live, so a retry can end it properly.
    assert await refresh_status(client, acct.refresh_token) == 200
