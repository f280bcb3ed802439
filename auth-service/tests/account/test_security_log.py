"""GET /v1/auth/security-events: the caller's own security log."""
from __future__ import annotations

import uuid

from ..conftest import INTERNAL_TOKEN


def seen_from(ip: str, ua: str) -> dict:
    return {"X-Internal-Token": INTERNAL_TOKEN, "X-Client-IP": ip, "User-Agent": ua}


async def all_events(c, account) -> list[dict]:
    items, cursor = [], None
    while True:
        resp = await c.get("/v1/auth/security-events", params={"limit": 2, **({"cursor": cursor} if cursor else {})},
                           headers=account.auth)
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


async def test_the_log_lists_the_callers_security_events_with_address_and_user_agent(client, signup):
    account = await signup()
    stranger = await signup()
    ip, ua = "192.0.2.17", f"TestBrowser/{uuid.uuid4().hex[:6]}"
    bad = await client.post("/v1/auth/login", json={"email": account.email, "password": "wrong password!!"},
                            headers=seen_from(ip, ua))
    assert bad.status == 401
    good = await client.post("/v1/auth/login", json={"email": account.email, "password": account.password},
                             headers=seen_from(ip, ua))
    assert good.status == 200
    session = (await good.json())["tokens"]
    auth = {"Authorization": f"Bearer {session['access_token']}", **seen_from("192.0.2.18", ua)}
    resp = await client.post("/v1/auth/password", json={"current_password": account.password,
                                                        "new_password": "another good passphrase 1"}, headers=auth)
    assert resp.status == 204
    # the stranger's failed attempt against their own account stays theirs
    await client.post("/v1/auth/login", json={"email": stranger.email, "password": "nope nope nope"},
                      headers=seen_from("192.0.2.99", "Stranger/1"))

    resp = await client.get("/v1/auth/security-events", headers={"Authorization": f"Bearer {session['access_token']}"})
    assert resp.status == 200
    items = (await resp.json())["items"]
    assert all(set(i) == {"id", "type", "occurred_at", "ip", "user_agent"} for i in items)
    # newest first: the change (which ended the signup session), the sign-in, the failed one
    assert [i["type"] for i in items] == ["auth.password_changed", "auth.session_revoked", "auth.login_succeeded",
                                          "auth.login_failed"]
    by_type = {i["type"]: i for i in items}
    assert (by_type["auth.login_failed"]["ip"], by_type["auth.login_failed"]["user_agent"]) == (ip, ua)
    assert (by_type["auth.login_succeeded"]["ip"], by_type["auth.login_succeeded"]["user_agent"]) == (ip, ua)
    assert by_type["auth.password_changed"]["ip"] == "192.0.2.18"
    stamps = [i["occurred_at"] for i in items]
    assert stamps == sorted(stamps, reverse=True)

    # paginated with the shared cursor codec: the same list, page by page
    account.access_token = session["access_token"]
    assert [i["id"] for i in await all_events(client, account)] == [i["id"] for i in items]

    theirs = await all_events(client, stranger)
    assert [i["type"] for i in theirs] == ["auth.login_failed"]
    assert not {i["id"] for i in theirs} & {i["id"] for i in items}


async def test_refresh_reuse_and_the_ended_session_are_logged(start_app, make_settings, settings, signup):
    c = await start_app(make_settings(tenant_url=settings.tenant_url, refresh_grace_s=0.0))
    account = await signup(c=c)
    assert (await c.post("/v1/auth/refresh", json={"refresh_token": account.refresh_token})).status == 200
    reused = await c.post("/v1/auth/refresh", json={"refresh_token": account.refresh_token},
                          headers=seen_from("192.0.2.66", "Thief/1"))
    assert reused.status == 401
    login = await c.post("/v1/auth/login", json={"email": account.email, "password": account.password})
    auth = {"Authorization": f"Bearer {(await login.json())['tokens']['access_token']}"}
    items = (await (await c.get("/v1/auth/security-events", headers=auth)).json())["items"]
    assert [i["type"] for i in items] == ["auth.login_succeeded", "auth.refresh_token_reused", "auth.session_revoked"]
    assert (items[1]["ip"], items[1]["user_agent"]) == ("192.0.2.66", "Thief/1")


async def test_bad_cursor_and_limit_are_422_and_the_route_needs_a_token(client, signup):
    account = await signup()
    resp = await client.get("/v1/auth/security-events", params={"cursor": "forged"}, headers=account.auth)
    assert resp.status == 422 and (await resp.json())["errors"][0]["field"] == "cursor"
    resp = await client.get("/v1/auth/security-events", params={"limit": "0"}, headers=account.auth)
    assert resp.status == 422
    assert (await client.get("/v1/auth/security-events")).status == 401


async def test_entries_older_than_the_retention_are_purged(client, signup, admin_db):
    import asyncpg

    from auth_service.security_log.repository import purge_older_than
    from shared.testing import app_dsn
    account = await signup()
    await client.post("/v1/auth/login", json={"email": account.email, "password": "wrong password!!"})
    await admin_db.execute("UPDATE auth.security_event SET occurred_at = now() - interval '91 days' "
                           "WHERE user_id = $1", uuid.UUID(account.id))
    await client.post("/v1/auth/login", json={"email": account.email, "password": "wrong password!!"})
    pool = await asyncpg.create_pool(app_dsn("auth"), min_size=1, max_size=1, server_settings={"search_path": "auth"})
    try:
        assert await purge_older_than(pool, days=90) >= 1
    finally:
        await pool.close()
    types = await admin_db.fetch("SELECT occurred_at > now() - interval '1 day' AS recent FROM auth.security_event "
                                 "WHERE user_id = $1", uuid.UUID(account.id))
    assert [r["recent"] for r in types] == [True]
