"""The mail sender: delivers ``mail_outbox`` rows over SMTP.

It wakes on the ``<schema>_mail`` NOTIFY sent when a transaction that added an email commits,
and polls as a fallback. Each email is claimed with ``FOR UPDATE SKIP LOCKED`` in its own
transaction, which stays open while the SMTP server takes the message and then marks it sent
(erasing its bodies) and commits: replicas and workers never send one row at the same time, and
a row that was not accepted stays pending. While the SMTP server is unreachable nothing is lost:
the rows wait and the sender retries with doubling delays (capped by ``MAIL_RETRY_MAX_DELAY_S``).

One window remains, as with any SMTP client: the server accepted a message and the process died
(or lost PostgreSQL) before the commit. The row is then sent again, with the same
``Message-ID`` as the first copy, so receiving systems can recognise it. A message the server
refuses for good (a 5xx answer) is marked failed rather than retried forever.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
import asyncpg
from aiohttp import web
from prometheus_client import Counter, Gauge

from ..db import DB_POOL
from ..tasks import cancel_and_wait
from .config import MailSettings

log = logging.getLogger(__name__)

MAILS_SENT = Counter("mails_sent_total", "Emails accepted by the SMTP server", ["schema"])
MAIL_FAILURES = Counter("mail_send_failures_total", "SMTP attempts that failed (the email is retried unless "
                                                    "the server refused it for good)", ["schema", "kind"])
MAIL_PENDING = Gauge("mail_outbox_pending", "Emails waiting to be sent", ["schema"])

_MIN_BACKOFF_S = 0.5
_PURGE_INTERVAL_S = 300.0
_TRUE = {"1", "true", "yes", "on", "required"}


@dataclass(frozen=True)
class SmtpTarget:
    """Where and how to reach the SMTP server, from ``SMTP_URL``."""
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    use_tls: bool = False
    start_tls: bool = False

    @classmethod
    def from_url(cls, url: str) -> SmtpTarget:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError("SMTP_URL must start with smtp:// or smtps://")
        query = {k: v[-1].lower() for k, v in parse_qs(parts.query).items()}
        use_tls = parts.scheme == "smtps"
        return cls(host=parts.hostname or "127.0.0.1", port=parts.port or (465 if use_tls else 25),
                   username=unquote(parts.username) if parts.username else None,
                   password=unquote(parts.password) if parts.password else None,
                   use_tls=use_tls, start_tls=not use_tls and query.get("starttls", "") in _TRUE)

    def client(self, timeout_s: float) -> aiosmtplib.SMTP:
        # start_tls is explicit: False never upgrades, True requires it (no silent downgrade).
        return aiosmtplib.SMTP(hostname=self.host, port=self.port, username=self.username, password=self.password,
                               use_tls=self.use_tls, start_tls=self.start_tls, timeout=timeout_s)


def build_message(row: asyncpg.Record, mail_from: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = mail_from
    msg["To"] = row["recipient"]
    msg["Subject"] = row["subject"]
    msg["Message-ID"] = row["message_id"]
    msg["Date"] = format_datetime(row["created_at"])
    msg.set_content(row["text_body"])
    msg.add_alternative(row["html_body"], subtype="html")
    return msg


def _permanent(exc: Exception) -> bool:
    """The server refused this message for good (5xx): retrying would never succeed."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return all(500 <= r.code < 600 for r in exc.recipients)
    if isinstance(exc, (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPConnectResponseError,
                        aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPAuthenticationError)):
        return False
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return 500 <= exc.code < 600 and exc.code not in (530, 535)  # auth problems are ours to fix
    return False


class MailSender:
    def __init__(self, pool: asyncpg.Pool, *, target: SmtpTarget, mail_from: str, schema: str,
                 poll_interval_s: float = 2.0, retry_max_delay_s: float = 60.0, timeout_s: float = 10.0,
                 retention_s: int = 7 * 24 * 3600):
        self.pool, self.target, self.mail_from, self.schema = pool, target, mail_from, schema
        self.poll_interval_s, self.retry_max_delay_s = poll_interval_s, retry_max_delay_s
        self.timeout_s, self.retention_s = timeout_s, retention_s
        self.smtp_reachable: bool | None = None
        self.sent_total = 0
        self._wake = asyncio.Event()
        self._backoff = _MIN_BACKOFF_S
        self._last_purge = 0.0

    def _notified(self, *_args: object) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Run until cancelled; survives PostgreSQL and SMTP outages."""
        while True:
            try:
                await self._run_listening()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("mail sender interrupted, retrying",
                            extra={"schema": self.schema, "error": type(exc).__name__})
                await asyncio.sleep(self._next_backoff())

    def _next_backoff(self) -> float:
        delay = self._backoff + random.uniform(0, self._backoff / 4)
        self._backoff = min(self._backoff * 2, self.retry_max_delay_s)
        return min(delay, self.retry_max_delay_s)

    async def _run_listening(self) -> None:
        channel = f"{self.schema}_mail"
        listener = await self.pool.acquire()
        try:
            await listener.add_listener(channel, self._notified)
            while True:
                self._wake.clear()
                delivered, smtp_down = await self.send_due()
                await self._maybe_purge()
                if smtp_down:
                    # Wait out the backoff; new emails just queue meanwhile.
                    await asyncio.sleep(self._next_backoff())
                    continue
                self._backoff = _MIN_BACKOFF_S
                if delivered:
                    continue
                # asyncio.timeout, not wait_for (see shared.messaging.relay).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_interval_s):
                        await self._wake.wait()
        finally:
            with contextlib.suppress(Exception):
                await listener.remove_listener(channel, self._notified)
            with contextlib.suppress(Exception):
                await self.pool.release(listener)

    async def send_due(self, limit: int = 50) -> tuple[int, bool]:
        """Send up to ``limit`` due emails over one SMTP connection. Returns (sent, smtp_down)."""
        sent = 0
        smtp: aiosmtplib.SMTP | None = None
        try:
            for _ in range(limit):
                async with self.pool.acquire() as conn, conn.transaction():
                    row = await conn.fetchrow(
                        "SELECT id, recipient, message_id, subject, text_body, html_body, created_at, attempts "
                        "FROM mail_outbox WHERE sent_at IS NULL AND failed_at IS NULL "
                        "AND next_attempt_at <= clock_timestamp() ORDER BY next_attempt_at, seq LIMIT 1 "
                        "FOR UPDATE SKIP LOCKED")
                    if row is None:
                        return sent, False
                    try:
                        message = build_message(row, self.mail_from)
                    except (ValueError, TypeError) as exc:
                        # A message that cannot be built never will be: park it, never loop on it.
                        await self._failed(conn, row, exc, permanent=True)
                        continue
                    try:
                        if smtp is None:
                            smtp = self.target.client(self.timeout_s)
                            await smtp.connect()
                        await smtp.send_message(message)
                    except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
                        await _drop(smtp)
                        smtp = None
                        await self._failed(conn, row, exc)
                        if not _permanent(exc):
                            self.smtp_reachable = not isinstance(exc, (aiosmtplib.SMTPConnectError, OSError,
                                                                       aiosmtplib.SMTPServerDisconnected,
                                                                       asyncio.TimeoutError))
                            return sent, True
                        continue
                    # Still inside the claim's transaction: the bodies (and any token in them)
                    # are erased in the same commit that records the delivery.
                    await conn.execute(
                        "UPDATE mail_outbox SET sent_at = clock_timestamp(), attempts = attempts + 1, "
                        "text_body = NULL, html_body = NULL, last_error = NULL WHERE id = $1", row["id"])
                self.smtp_reachable = True
                sent += 1
                self.sent_total += 1
                MAILS_SENT.labels(self.schema).inc()
            return sent, False
        finally:
            await _drop(smtp, quit=True)

    async def _failed(self, conn: asyncpg.Connection, row: asyncpg.Record, exc: Exception, *,
                      permanent: bool = False) -> None:
        kind = "refused" if permanent or _permanent(exc) else "transient"
        MAIL_FAILURES.labels(self.schema, kind).inc()
        error = type(exc).__name__
        if kind == "refused":
            # Never retried: erase the bodies now, keep the row for an operator.
            await conn.execute(
                "UPDATE mail_outbox SET failed_at = clock_timestamp(), attempts = attempts + 1, last_error = $2, "
                "text_body = NULL, html_body = NULL WHERE id = $1", row["id"], error)
            log.error("email refused by the SMTP server", extra={"mail_id": str(row["id"]), "error": error,
                                                                 "schema": self.schema})
            return
        delay = min(_MIN_BACKOFF_S * 2 ** min(row["attempts"], 16), self.retry_max_delay_s)
        await conn.execute(
            "UPDATE mail_outbox SET attempts = attempts + 1, last_error = $2, "
            "next_attempt_at = clock_timestamp() + make_interval(secs => $3) WHERE id = $1",
            row["id"], error, float(delay))
        log.warning("email not sent, will retry", extra={"mail_id": str(row["id"]), "error": error,
                                                         "schema": self.schema, "retry_in_s": delay})

    async def _maybe_purge(self) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._last_purge < _PURGE_INTERVAL_S:
            return
        self._last_purge = now
        async with self.pool.acquire() as conn:
            await conn.execute(
                "DELETE FROM mail_outbox WHERE (sent_at IS NOT NULL OR failed_at IS NOT NULL) "
                "AND created_at < clock_timestamp() - make_interval(secs => $1)", float(self.retention_s))


async def _drop(smtp: aiosmtplib.SMTP | None, *, quit: bool = False) -> None:
    if smtp is None:
        return None
    with contextlib.suppress(Exception):
        if quit and smtp.is_connected:
            await asyncio.wait_for(smtp.quit(), timeout=2)
    with contextlib.suppress(Exception):
        smtp.close()
    return None


async def mail_backlog(pool: asyncpg.Pool, schema: str) -> tuple[int, float]:
    """Emails waiting and the age in seconds of the oldest one (also sets the gauge)."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT count(*) AS n, COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - min(created_at)), 0) AS age "
            "FROM mail_outbox WHERE sent_at IS NULL AND failed_at IS NULL")
    MAIL_PENDING.labels(schema).set(int(row["n"]))
    return int(row["n"]), float(row["age"])


class SmtpUnreachable(Exception):
    pass


MAIL_SENDER = web.AppKey("mail_sender", MailSender)


def mail_sender_ctx(settings: MailSettings) -> Callable[[web.Application], AsyncIterator[None]]:
    """Run the sender as a background task of the app (after the pool context)."""
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        sender = MailSender(app[DB_POOL], target=SmtpTarget.from_url(settings.smtp_url.get_secret_value()),
                            mail_from=settings.mail_from, schema=settings.db_schema,
                            poll_interval_s=settings.mail_poll_interval_s,
                            retry_max_delay_s=settings.mail_retry_max_delay_s,
                            timeout_s=settings.mail_smtp_timeout_s, retention_s=settings.mail_retention_s)
        app[MAIL_SENDER] = sender
        task = asyncio.create_task(sender.run(), name="mail-sender") if settings.mailer_enabled else None
        yield
        await cancel_and_wait(task)
    return ctx


async def check_mail(app: web.Application) -> dict[str, bool | int | float | None]:
    """Reported in the readiness body, never required: emails wait while SMTP is away."""
    sender = app[MAIL_SENDER]
    pending, oldest = await mail_backlog(app[DB_POOL], sender.schema)
    state: dict[str, bool | int | float | None] = {
        "smtp_reachable": sender.smtp_reachable, "pending": pending, "oldest_age_s": round(oldest, 3)}
    if sender.smtp_reachable is False:
        raise SmtpUnreachable(state)
    return state
