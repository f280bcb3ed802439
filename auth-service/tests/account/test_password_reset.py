"""Password reset: one answer for every email, throttles, the link, single use, newest only,
every session ended."""
from __future__ import annotations

import statistics
import time
import uuid

from shared import redis_keys

from ..conftest import INTERNAL_TOKEN
from .conftest import link_token, parts

NEW_PASSWORD = "a brand new passphrase 2026"
VOLATILE = {"X-Request-ID", "Date", "Server", "Content-Length"}


def from_address(ip: str) -> dict:
    """Headers the gateway sets: the client address, vouched for by the internal token."""
    return {"X-Internal-Token": INTERNAL_TOKEN, "X-Client-IP": ip}


async def test_known_and_unknown_emails_get_the_same_answer_in_the_same_time(start_app, mail_settings, signup,
                                                                           new_email, smtp):
    c = await start_app(mail_settings(password_reset_requests_per_email=100, password_reset_requests_per_ip=1000))
    known = await signup(c=c)
    answers, timings = {}, {"known": [], "unknown": []}
    for _ in range(6):
        for kind in ("known", "unknown"):
            address = known.email if kind == "known" else new_email()
            started = time.monotonic()
            resp = await c.post("/v1/auth/password-reset/request", json={"email": address})
            timings[kind].append(time.monotonic() - started)
            body = await resp.read()
            headers = {k: v for k, v in resp.headers.items() if k not in VOLATILE}
            answers.setdefault(kind, set()).add((resp.status, body, tuple(sorted(headers.items()))))
    assert answers["known"] == answers["unknown"] and len(answers["known"]) == 1
    assert next(iter(answers["known"]))[0] == 202
    known_t, unknown_t = statistics.median(timings["known"]), statistics.median(timings["unknown"])
    assert abs(known_t - unknown_t) <= 0.2 * max(known_t, unknown_t), timings
    print(f"\nreset request median: known {known_t * 1000:.0f} ms, unknown {unknown_t * 1000:.0f} ms")
    # and the known one did get its emails (one per request), the others nothing
    await smtp.inbox.wait_for(known.email, 1 + 6)


async def test_reset_requests_are_throttled_per_email_and_per_address(start_app, mail_settings, new_email):
    c = await start_app(mail_settings(password_reset_requests_per_email=2, password_reset_requests_per_ip=3))
    address = new_email()  # no account: throttled just the same
    ip = f"198.51.100.{uuid.uuid4().int % 250 + 1}"
    for _ in range(2):
        assert (await c.post("/v1/auth/password-reset/request", json={"email": address},
                             headers=from_address(f"203.0.113.{uuid.uuid4().int % 250 + 1}"))).status == 202
    resp = await c.post("/v1/auth/password-reset/request", json={"email": address})
    assert resp.status == 429 and int(resp.headers["Retry-After"]) > 0
    for _ in range(3):
        assert (await c.post("/v1/auth/password-reset/request", json={"email": new_email()},
                             headers=from_address(ip))).status == 202
    resp = await c.post("/v1/auth/password-reset/request", json={"email": new_email()}, headers=from_address(ip))
    assert resp.status == 429
    bad = await c.post("/v1/auth/password-reset/request", json={"email": "not an email"})
    assert bad.status == 422 and (await bad.json())["errors"][0]["field"] == "email"


async def test_reset_sets_the_password_ends_every_session_and_only_the_newest_token_works(
        start_app, mail_settings, signup, smtp, redis, events, admin_db):
    c = await start_app(mail_settings())
    account = await signup(c=c)
    login = await c.post("/v1/auth/login", json={"email": account.email, "password": account.password})
    assert login.status == 200
    other = (await login.json())["tokens"]

    for _ in range(2):
        assert (await c.post("/v1/auth/password-reset/request", json={"email": account.email})).status == 202
    resets = [m for m in await smtp.inbox.wait_for(account.email, 3) if m["Subject"] == "Reset your password"]
    assert len(resets) == 2
    older, newer = (link_token(m, "reset-password") for m in resets)
    text, html = parts(resets[1])
    assert "30 minutes" in text and "<a href=" in html
    ttl = await admin_db.fetchval("SELECT expires_at - created_at FROM auth.password_reset_token WHERE user_id = $1",
                                  uuid.UUID(account.id))
    assert abs(ttl.total_seconds() - 1800) < 5

    # an older link is dead once a newer one was sent
    resp = await c.post("/v1/auth/password-reset", json={"token": older, "new_password": NEW_PASSWORD})
    assert resp.status == 422 and (await resp.json())["type"].endswith("/invalid-email-token")
    # a weak password is refused without spending the token
    resp = await c.post("/v1/auth/password-reset", json={"token": newer, "new_password": "short"})
    assert resp.status == 422 and (await resp.json())["errors"][0]["field"] == "new_password"

    resp = await c.post("/v1/auth/password-reset", json={"token": newer, "new_password": NEW_PASSWORD})
    assert resp.status == 204

    # the new password works, the old one does not
    assert (await c.post("/v1/auth/login", json={"email": account.email, "password": account.password})).status == 401
    assert (await c.post("/v1/auth/login", json={"email": account.email, "password": NEW_PASSWORD})).status == 200
    # every earlier session ended: refresh tokens refused, access tokens refused here and marked
    # revoked in Redis, which the gateway checks on every request
    for refresh_token in (account.refresh_token, other["refresh_token"]):
        assert (await c.post("/v1/auth/refresh", json={"refresh_token": refresh_token})).status == 401
    for access in (account.access_token, other["access_token"]):
        assert (await c.get("/v1/auth/me", headers={"Authorization": f"Bearer {access}"})).status == 401
    ended = await admin_db.fetch("SELECT id FROM auth.session WHERE user_id = $1 AND revoked_reason = 'password_reset'",
                                 uuid.UUID(account.id))
    assert len(ended) == 2
    for row in ended:
        assert await redis.exists(redis_keys.session_revoked(row["id"])) == 1

    # single use
    resp = await c.post("/v1/auth/password-reset", json={"token": newer, "new_password": "yet another passphrase 9"})
    assert resp.status == 422
    [reset] = await events("auth.password_reset", account.id)
    assert reset["data"] == {"user_id": account.id} and reset["actor"]["user_id"] == account.id
    assert len(await events("auth.password_reset_requested", account.id)) == 2
    revoked = [e for e in await admin_db.fetch(
        "SELECT payload->'data' AS d FROM auth.outbox WHERE routing_key = 'auth.session_revoked' "
        "AND payload->'data'->>'user_id' = $1", account.id)]
    assert len(revoked) == 2


async def test_concurrent_uses_of_one_reset_token_let_exactly_one_through(start_app, mail_settings, signup, smtp):
    import asyncio
    c = await start_app(mail_settings())
    for _ in range(3):
        account = await signup(c=c)
        assert (await c.post("/v1/auth/password-reset/request", json={"email": account.email})).status == 202
        [msg] = [m for m in await smtp.inbox.wait_for(account.email, 2) if m["Subject"] == "Reset your password"]
        token = link_token(msg, "reset-password")
        answers = await asyncio.gather(*(c.post("/v1/auth/password-reset",
                                                json={"token": token, "new_password": f"{NEW_PASSWORD} {i}"})
                                         for i in range(6)))
        statuses = sorted(r.status for r in answers)
        assert statuses == [204] + [422] * 5, statuses


async def test_an_expired_reset_token_is_refused(start_app, mail_settings, signup, smtp, admin_db):
    c = await start_app(mail_settings())
    account = await signup(c=c)
    assert (await c.post("/v1/auth/password-reset/request", json={"email": account.email})).status == 202
    [msg] = [m for m in await smtp.inbox.wait_for(account.email, 2) if m["Subject"] == "Reset your password"]
    await admin_db.execute("UPDATE auth.password_reset_token SET expires_at = now() - interval '1 second' "
                           "WHERE user_id = $1", uuid.UUID(account.id))
    resp = await c.post("/v1/auth/password-reset",
                        json={"token": link_token(msg, "reset-password"), "new_password": NEW_PASSWORD})
    assert resp.status == 422
    assert (await c.post("/v1/auth/login", json={"email": account.email, "password": account.password})).status == 200
