"""The SMTP server away for 30 seconds while emails are requested: every email arrives, once,
after it is back."""
from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter

from .conftest import eventually

OUTAGE_S = 30.0


async def test_emails_wait_out_an_smtp_outage_and_arrive_exactly_once(start_app, mail_settings, signup, smtp,
                                                                      admin_db):
    # two replicas' mailers share the outbox: neither may send a row the other sent
    apps = [await start_app(mail_settings(password_reset_requests_per_email=100)) for _ in range(2)]
    smtp.stop()
    down_at = time.monotonic()
    accounts = []
    while time.monotonic() - down_at < OUTAGE_S - 2:
        # signups (verification emails) and reset requests, on both replicas, during the outage
        c = apps[len(accounts) % 2]
        account = await signup(c=c)
        accounts.append(account)
        assert (await c.post("/v1/auth/password-reset/request", json={"email": account.email})).status == 202
        await asyncio.sleep(2.5)
    expected = {a.email: 2 for a in accounts}
    assert len(accounts) >= 8
    # nothing was sent; the mailers did try (and will again)
    assert not any(smtp.inbox.to(a) for a in expected)
    await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))
    attempts = await admin_db.fetchval("SELECT max(attempts) FROM auth.mail_outbox WHERE recipient = ANY($1::text[])",
                                       list(expected))
    assert attempts >= 1
    # readiness names the SMTP server without failing: requests keep being served
    ready = await apps[0].get("/health/ready")
    body = await ready.json()
    assert ready.status == 200 and body["checks"]["smtp"]["ok"] is False
    assert body["checks"]["smtp"]["required"] is False

    smtp.start()  # the same port again
    back_at = time.monotonic()
    for address, n in expected.items():
        await smtp.inbox.wait_for(address, n, timeout=30)
    delivered_in = time.monotonic() - back_at
    await eventually(lambda: admin_db.fetchval(
        "SELECT count(*) = 0 FROM auth.mail_outbox WHERE recipient = ANY($1::text[]) AND sent_at IS NULL",
        list(expected)))
    await asyncio.sleep(3)  # room for any duplicate to show up
    received = Counter()
    ids = Counter()
    for address in expected:
        for msg in smtp.inbox.to(address):
            received[address] += 1
            ids[msg["Message-ID"]] += 1
    assert received == Counter(expected), "every email exactly once"
    assert set(ids.values()) == {1}
    smtp_check = (await (await apps[1].get("/health/ready")).json())["checks"]["smtp"]
    assert smtp_check["ok"] is True and smtp_check["smtp_reachable"] is True
    print(f"\n{sum(expected.values())} emails queued during a {OUTAGE_S:.0f} s SMTP outage, all delivered "
          f"{delivered_in:.1f} s after it ended")


async def test_a_message_that_cannot_be_built_is_parked_and_the_others_still_go(mail_client, signup, smtp,
                                                                                 admin_db):
    poison = uuid.uuid4()
    await admin_db.execute(
        "INSERT INTO auth.mail_outbox (id, template, recipient, message_id, subject, text_body, html_body) "
        "VALUES ($1, 'verify_email', $2, $3, 'Subject', 'text', '<p>html</p>')",
        poison, "broken\r\nBcc: someone@example.com", f"<{poison}@test>")
    account = await signup(c=mail_client)
    await smtp.inbox.wait_for(account.email)
    row = await eventually(lambda: admin_db.fetchrow(
        "SELECT failed_at, text_body, last_error FROM auth.mail_outbox WHERE id = $1 AND failed_at IS NOT NULL",
        poison))
    assert row["text_body"] is None and row["last_error"]
    assert smtp.inbox.to("someone@example.com") == []
