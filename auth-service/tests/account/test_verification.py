"""Email verification: the email at signup, the link, single use, throttled re-sends."""
from __future__ import annotations

import uuid

from .conftest import PUBLIC_APP_URL, eventually, link_token, parts


async def me(c, account) -> dict:
    resp = await c.get("/v1/auth/me", headers=account.auth)
    assert resp.status == 200
    return await resp.json()


async def test_signup_sends_a_verification_email_whose_link_verifies_once(mail_client, signup, smtp, events,
                                                                         admin_db):
    account = await signup(c=mail_client)
    assert (await me(mail_client, account))["email_verified"] is False

    [msg] = await smtp.inbox.wait_for(account.email)
    assert msg["To"] == account.email and msg["Subject"] == "Confirm your email address"
    assert msg["Message-ID"].startswith("<") and msg["Message-ID"].endswith(">")
    text, html = parts(msg)
    assert "Test User" in text and account.email in text and "<a href=" in html
    token = link_token(msg, "verify-email")
    assert f"{PUBLIC_APP_URL}/verify-email?token={token}" in text

    # only the sha256 is stored, and the sent email's bodies are erased from the mail outbox
    assert await admin_db.fetchval("SELECT count(*) FROM auth.email_verification_token WHERE user_id = $1",
                                   uuid.UUID(account.id)) == 1
    row = await eventually(lambda: admin_db.fetchrow(
        "SELECT sent_at, text_body, html_body, message_id FROM auth.mail_outbox "
        "WHERE recipient = $1 AND sent_at IS NOT NULL", account.email))
    assert row["sent_at"] is not None and row["text_body"] is None and row["html_body"] is None
    assert row["message_id"] == msg["Message-ID"]

    resp = await mail_client.post("/v1/auth/verify-email", json={"token": token})
    assert resp.status == 204
    assert (await me(mail_client, account))["email_verified"] is True
    [event] = await events("auth.email_verified", account.id)
    assert event["data"] == {"user_id": account.id, "email": account.email, "method": "link"}
    assert event["actor"]["user_id"] == account.id

    again = await mail_client.post("/v1/auth/verify-email", json={"token": token})
    assert again.status == 422
    problem = await again.json()
    assert problem["type"].endswith("/invalid-email-token") and problem["errors"][0]["field"] == "token"
    assert len(await events("auth.email_verified", account.id)) == 1


async def test_unknown_malformed_and_expired_tokens_are_refused(mail_client, signup, smtp, admin_db):
    for body in ({"token": "x" * 43}, {"token": ""}, {}, {"token": "a", "extra": 1}):
        resp = await mail_client.post("/v1/auth/verify-email", json=body)
        assert resp.status == 422, body
        assert resp.content_type == "application/problem+json"
    account = await signup(c=mail_client)
    token = link_token((await smtp.inbox.wait_for(account.email))[0], "verify-email")
    await admin_db.execute("UPDATE auth.email_verification_token SET expires_at = now() - interval '1 second' "
                           "WHERE user_id = $1", uuid.UUID(account.id))
    resp = await mail_client.post("/v1/auth/verify-email", json={"token": token})
    assert resp.status == 422
    assert (await me(mail_client, account))["email_verified"] is False


async def test_token_expires_after_24_hours(mail_client, signup, smtp, admin_db):
    account = await signup(c=mail_client)
    await smtp.inbox.wait_for(account.email)
    ttl = await admin_db.fetchval("SELECT expires_at - created_at FROM auth.email_verification_token "
                                  "WHERE user_id = $1", uuid.UUID(account.id))
    assert abs(ttl.total_seconds() - 24 * 3600) < 5


async def test_a_new_verification_email_on_request_is_throttled(start_app, mail_settings, signup, smtp):
    c = await start_app(mail_settings(verification_requests_per_window=2))
    account = await signup(c=c)
    for _ in range(2):
        resp = await c.post("/v1/auth/verify-email/request", headers=account.auth)
        assert resp.status == 202
    throttled = await c.post("/v1/auth/verify-email/request", headers=account.auth)
    assert throttled.status == 429 and int(throttled.headers["Retry-After"]) > 0
    msgs = await smtp.inbox.wait_for(account.email, 3)
    tokens = [link_token(m, "verify-email") for m in msgs]
    assert len(set(tokens)) == 3
    assert len({m["Message-ID"] for m in msgs}) == 3
    # any unexpired one works (the newest is not special for verification)
    assert (await c.post("/v1/auth/verify-email", json={"token": tokens[1]})).status == 204
    assert (await me(c, account))["email_verified"] is True
    # verified: a request answers the same and sends nothing
    assert (await c.post("/v1/auth/verify-email/request", headers=account.auth)).status in (202, 429)
    assert (await c.post("/v1/auth/verify-email/request")).status == 401
