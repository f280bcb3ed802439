"""A real SMTP server (aiosmtpd) in the test process, and auth apps whose mailer sends to it."""
from __future__ import annotations

import asyncio
import email
import email.policy
import re
import threading
import time

import pytest
from aiohttp.test_utils import unused_port
from aiosmtpd.controller import Controller

PUBLIC_APP_URL = "https://app.test.example"
TOKEN_LINK = re.compile(r"(?P<url>https://app\.test\.example/(?P<path>[a-z-]+)\?token=(?P<token>[A-Za-z0-9_\-]+))")


class Inbox:
    """What the SMTP server received: (envelope recipients, parsed message)."""
    def __init__(self):
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        with self._lock:
            self.messages.append((list(envelope.rcpt_tos), msg))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[email.message.EmailMessage]:
        with self._lock:
            return [m for rcpts, m in self.messages if address in rcpts]

    async def wait_for(self, address: str, count: int = 1, timeout: float = 15.0) -> list[email.message.EmailMessage]:
        deadline = time.monotonic() + timeout
        while True:
            got = self.to(address)
            if len(got) >= count or time.monotonic() > deadline:
                assert len(got) >= count, f"{address}: {len(got)} of {count} emails after {timeout}s"
                return got
            await asyncio.sleep(0.05)


class SmtpServer:
    def __init__(self, port: int):
        self.port, self.inbox, self.controller = port, Inbox(), None

    def start(self) -> None:
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"


@pytest.fixture
def smtp():
    server = SmtpServer(unused_port())
    server.start()
    yield server
    server.stop()


def parts(msg: email.message.EmailMessage) -> tuple[str, str]:
    """(text/plain, text/html) of a message."""
    text = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    assert text is not None and html is not None, "an email needs a plain-text and an HTML part"
    return text.get_content(), html.get_content()


def link_token(msg: email.message.EmailMessage, path: str) -> str:
    text, html = parts(msg)
    found = TOKEN_LINK.search(text)
    assert found and found["path"] == path, text
    assert found["url"] in html  # the same link in both parts
    return found["token"]


@pytest.fixture
def mail_settings(make_settings, tenant_server, smtp):
    """``mail_settings(**overrides)``: auth settings whose mailer sends to the test SMTP server."""
    def make(**overrides):
        values = dict(tenant_url=str(tenant_server.make_url("")).rstrip("/"), mailer_enabled=True,
                      smtp_url=smtp.url, public_app_url=PUBLIC_APP_URL, mail_poll_interval_s=0.2,
                      mail_retry_max_delay_s=2.0, password_reset_request_floor_s=0.3,
                      password_reset_requests_per_ip=100_000)
        values.update(overrides)
        return make_settings(**values)
    return make


@pytest.fixture
async def mail_client(start_app, mail_settings):
    return await start_app(mail_settings())


async def eventually(check, timeout: float = 10.0, interval: float = 0.05):
    """Await ``check()`` until it returns something truthy (the mailer commits after SMTP accepts)."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            assert result, f"not true after {timeout}s"
            return result
        await asyncio.sleep(interval)
