"""POST /v1/auth/password and GET /v1/auth/me."""
import jwt


def sid_of(token: str) -> str:
    return jwt.decode(token, options={"verify_signature": False})["sid"]


async def test_password_change_ends_every_other_session(client, signup, events, redis, bearer):
    acct = await signup()
    resp = await client.post("/v1/auth/login", json={"email": acct.email, "password": acct.password})
    other = (await resp.json())["tokens"]
    new = "a brand new passphrase"
    resp = await client.post("/v1/auth/password", json={"current_password": acct.password, "new_password": new},
                             headers=bearer(acct.access_token))
    assert resp.status == 204
    # The other session is over, this one goes on.
    assert (await client.post("/v1/auth/refresh", json={"refresh_token": other["refresh_token"]})).status == 401
    assert (await client.get("/v1/auth/me", headers=bearer(other["access_token"]))).status == 401
    assert await redis.get(f"rv:sid:{sid_of(other['access_token'])}") == b"1"
    assert (await client.get("/v1/auth/me", headers=bearer(acct.access_token))).status == 200
    assert (await client.post("/v1/auth/refresh", json={"refresh_token": acct.refresh_token})).status == 200
    assert await redis.get(f"rv:sid:{sid_of(acct.access_token)}") is None
    # Only the new password opens a session now.
    assert (await client.post("/v1/auth/login", json={"email": acct.email, "password": acct.password})).status == 401
    assert (await client.post("/v1/auth/login", json={"email": acct.email, "password": new})).status == 200
    [changed] = await events("auth.password_changed", acct.id)
    assert changed["data"] == {}
    [revoked] = await events("auth.session_revoked", sid_of(other["access_token"]))
    assert revoked["data"]["reason"] == "password_changed"


async def test_password_change_validation(client, signup, bearer):
    acct = await signup()
    cases = [
        ({"current_password": "wrong password!", "new_password": "a brand new passphrase"}, "current_password"),
        ({"current_password": acct.password, "new_password": "password1234"}, "new_password"),
        ({"current_password": acct.password, "new_password": "short"}, "new_password"),
        ({"current_password": acct.password, "new_password": acct.password}, "new_password"),
        ({"new_password": "a brand new passphrase"}, "current_password"),
    ]
    for body, field in cases:
        resp = await client.post("/v1/auth/password", json=body, headers=bearer(acct.access_token))
        assert resp.status == 422, body
        assert field in [e["field"] for e in (await resp.json())["errors"]]
    # Nothing changed.
    assert (await client.post("/v1/auth/login", json={"email": acct.email, "password": acct.password})).status == 200


async def test_guessing_the_current_password_is_throttled(make_settings, settings, start_app, signup, bearer):
    c = await start_app(make_settings(tenant_url=settings.tenant_url, login_max_failures_per_account=2))
    acct = await signup(c=c)
    body = {"current_password": "wrong password!", "new_password": "a brand new passphrase"}
    for _ in range(2):
        assert (await c.post("/v1/auth/password", json=body, headers=bearer(acct.access_token))).status == 422
    resp = await c.post("/v1/auth/password", json=body, headers=bearer(acct.access_token))
    assert resp.status == 429 and "Retry-After" in resp.headers
