"""Adding an email happens inside the caller's transaction, beside the state change that
causes it: it commits with it or not at all. Nothing here talks to the SMTP server.

The message is rendered here (plain text and HTML from the templates in ``templates/``) and
stored ready to send, with a ``Message-ID`` fixed now: a retry after a crash between the SMTP
server's acceptance and the row being marked sent carries the same id, so the duplicate can
be recognised. A body may hold a single-use token: the sender erases both bodies when it marks
the row sent (see sender.py), so a token is stored only as long as its email waits.
"""
from __future__ import annotations

import uuid
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import asyncpg
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES_DIR = Path(__file__).parent / "templates"

# template name -> subject
SUBJECTS = {
    "verify_email": "Confirm your email address",
    "password_reset": "Reset your password",
    "invitation": "You are invited to join {organization_name}",
}


class Mailer:
    def __init__(self, *, mail_from: str, public_app_url: str):
        self.mail_from = mail_from
        self.public_app_url = public_app_url.rstrip("/")
        domain = parseaddr(mail_from)[1].rpartition("@")[2]
        self.message_id_domain = domain or "localhost"
        self._text = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=False,
                                 undefined=StrictUndefined, keep_trailing_newline=True)
        self._html = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=select_autoescape(["html"]),
                                 undefined=StrictUndefined)

    def link(self, path: str, token: str) -> str:
        """``{PUBLIC_APP_URL}/{path}?token=...`` (tokens are URL-safe base64)."""
        return f"{self.public_app_url}/{path}?token={token}"

    def render(self, template: str, context: dict[str, Any]) -> tuple[str, str, str]:
        values = {"app_url": self.public_app_url, **context}
        # A header never carries a line break (a name with one would otherwise break the message).
        subject = " ".join(SUBJECTS[template].format(**values).split())
        text = self._text.get_template(f"{template}.txt").render(values)
        html = self._html.get_template(f"{template}.html").render(values)
        return subject, text, html

    async def enqueue(self, conn: asyncpg.Connection, *, template: str, to: str, context: dict[str, Any]) -> uuid.UUID:
        if not conn.is_in_transaction():
            raise RuntimeError("Mailer.enqueue must run inside the transaction of the change")
        subject, text, html = self.render(template, context)
        mail_id = uuid.uuid4()
        await conn.execute(
            "INSERT INTO mail_outbox (id, template, recipient, message_id, subject, text_body, html_body) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7)",
            mail_id, template, to, f"<{mail_id}@{self.message_id_domain}>", subject, text, html)
        return mail_id
