"""The whole account lifecycle with the relays, consumers and mailers of both services running:
invitation email -> signup -> accept -> verified (through the invitation.accepted event), a
verification link, a password reset. Then no token from any email may appear on the bus, in a
log line, or in a response (the invitation answer to its creator aside)."""
from __future__ import annotations

import asyncio
import io
import json
import logging
import uuid

import aio_pika
import pytest
from aiohttp.test_utils import TestClient, TestServer

from shared.logging import JsonFormatter
from shared.messaging.broker import declare_events_exchange
from shared.messaging.testing import delete_broker_objects
from shared.testing import AMQP_URL, test_settings
from tenant_service.app import create_app as create_tenant_app
from tenant_service.config import Settings as TenantSettings

from ..conftest import INTERNAL_TOKEN, unique_email
from .conftest import PUBLIC_APP_URL, eventually, link_token


class Recorder:
    """Every HTTP answer body of the journey, but for the one allowed to carry a token."""
    def __init__(self):
        self.bodies: list[str] = []

    async def __call__(self, resp, *, allowed: bool = False):
        text = await resp.text()
        if not allowed:
            self.bodies.append(text)
        return resp


@pytest.fixture
async def bus(exchange):
    """Every message published to the events exchange while the test runs."""
    connection = await aio_pika.connect(AMQP_URL)
    channel = await connection.channel()
    ex = await declare_events_exchange(channel, exchange)
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(ex, routing_key="#")
    messages: list[bytes] = []

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        async with message.process():
            messages.append(message.body)
    await queue.consume(on_message)
    yield messages
    await connection.close()


@pytest.fixture
def log_lines():
    """The JSON log lines every process of the test writes (at DEBUG, stricter than production)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("test"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


async def test_invitation_verification_and_reset_journey_leaks_no_token(
        client, auth_port, start_app, mail_settings, signup, smtp, exchange, bus, log_lines):
    suffix = uuid.uuid4().hex[:8]
    groups = [f"test-auth-invitations-{suffix}", f"test-tenant-users-{suffix}"]
    auth = await start_app(mail_settings(relay_enabled=True, invitation_consumer_enabled=True,
                                         invitation_consumer_group=groups[0]))
    tenant_settings = test_settings(
        TenantSettings, "tenant", internal_api_token=INTERNAL_TOKEN, events_exchange=exchange,
        jwks_url=f"http://127.0.0.1:{auth_port}/.well-known/jwks.json", auth_url=f"http://127.0.0.1:{auth_port}",
        relay_enabled=True,
        users_consumer_enabled=True, users_consumer_group=groups[1], mailer_enabled=True, smtp_url=smtp.url,
        public_app_url=PUBLIC_APP_URL, mail_poll_interval_s=0.2, mail_retry_max_delay_s=2.0, db_pool_max=4)
    tenant = TestClient(TestServer(create_tenant_app(tenant_settings)))
    await tenant.start_server()
    record = Recorder()
    tokens: dict[str, str] = {}
    try:
        owner = await signup(c=auth, organization_name=f"Inviters {suffix}")
        invitee_email = unique_email("invitee")

        # creating an invitation emails the invitee the accept link
        resp = await record(await tenant.post(f"/v1/organizations/{owner.organization_id}/invitations",
                                              json={"email": invitee_email, "role": "member"}, headers=owner.auth),
                            allowed=True)
        assert resp.status == 201, await resp.text()
        created = await resp.json()
        [invitation] = await smtp.inbox.wait_for(invitee_email)
        assert f"Inviters {suffix}" in invitation["Subject"]
        tokens["invitation"] = link_token(invitation, "accept-invitation")
        assert tokens["invitation"] == created["token"]

        # the invitee signs up (a verification email too), accepts, and is verified
        invitee = await signup(c=auth, email=invitee_email)
        me = await record(await auth.get("/v1/auth/me", headers=invitee.auth))
        assert (await me.json())["email_verified"] is False

        async def accepted():
            # the profile reaches tenant-service through user.registered on the bus
            r = await record(await tenant.post("/v1/invitations/accept", json={"token": tokens["invitation"]},
                                               headers=invitee.auth))
            return r.status == 200
        await eventually(accepted, timeout=20, interval=0.3)

        async def verified():
            r = await record(await auth.get("/v1/auth/me", headers=invitee.auth))
            return (await r.json())["email_verified"]
        await eventually(verified, timeout=20, interval=0.2)
        invitee_mail = await smtp.inbox.wait_for(invitee_email, 2)
        tokens["invitee_verification"] = link_token(
            next(m for m in invitee_mail if m["Subject"] == "Confirm your email address"), "verify-email")
        # already verified by the invitation: the link still works once, and changes nothing
        assert (await record(await auth.post("/v1/auth/verify-email",
                                             json={"token": tokens["invitee_verification"]}))).status == 204

        # the owner verifies through the link
        [owner_mail] = await smtp.inbox.wait_for(owner.email)
        tokens["owner_verification"] = link_token(owner_mail, "verify-email")
        assert (await record(await auth.post("/v1/auth/verify-email",
                                             json={"token": tokens["owner_verification"]}))).status == 204

        # the owner resets the password
        assert (await record(await auth.post("/v1/auth/password-reset/request",
                                             json={"email": owner.email}))).status == 202
        reset_mail = next(m for m in await smtp.inbox.wait_for(owner.email, 2) if m["Subject"] == "Reset your password")
        tokens["reset"] = link_token(reset_mail, "reset-password")
        assert (await record(await auth.post("/v1/auth/password-reset", json={
            "token": tokens["reset"], "new_password": "the owner's new passphrase"}))).status == 204
        # the reset ended the owner's sessions; the owner's log shows it
        assert (await record(await auth.get("/v1/auth/me", headers=owner.auth))).status == 401
        login = await record(await auth.post("/v1/auth/login", json={"email": owner.email,
                                                                     "password": "the owner's new passphrase"}))
        owner.access_token = (await login.json())["tokens"]["access_token"]
        log = await (await record(await auth.get("/v1/auth/security-events", headers=owner.auth))).json()
        assert {"auth.password_reset", "auth.email_verified", "auth.session_revoked"} <= {
            i["type"] for i in log["items"]}

        # wait until the events of the journey are on the bus
        wanted = {"invitation.created", "invitation.accepted", "auth.email_verified", "auth.password_reset",
                  "auth.password_reset_requested"}

        async def published():
            seen = {json.loads(m)["type"] for m in bus}
            return wanted <= seen
        await eventually(published, timeout=20, interval=0.2)
        verified_events = [json.loads(m) for m in bus if json.loads(m)["type"] == "auth.email_verified"]
        assert {"user_id": invitee.id, "email": invitee_email, "method": "invitation"} in [
            e["data"] for e in verified_events]
        await asyncio.sleep(1)
    finally:
        await tenant.close()
        await delete_broker_objects(AMQP_URL, groups=groups)

    assert len(tokens) == 4 and all(len(t) >= 40 for t in tokens.values())
    logs = log_lines.getvalue()
    assert '"route": "/v1/auth/password-reset"' in logs  # the capture did see the requests
    for name, token in tokens.items():
        assert not any(token in m.decode() for m in bus), f"{name} token on the bus"
        assert token not in logs, f"{name} token in a log line"
        assert not any(token in body for body in record.bodies), f"{name} token in a response"
