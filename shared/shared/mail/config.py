"""Mail settings, shared (unprefixed) by the services that send emails."""
from __future__ import annotations

from pydantic import SecretStr

from ..config import BaseServiceSettings, shared_field


class MailSettings(BaseServiceSettings):
    smtp_url: SecretStr = shared_field(
        "SMTP_URL", SecretStr("smtp://127.0.0.1:1025"),
        "SMTP server of the mailer: `smtp://[user:password@]host[:port]` (add `?starttls=true` to require "
        "STARTTLS), or `smtps://...` for TLS from the start (secret: may carry credentials).")
    mail_from: str = shared_field("MAIL_FROM", "SaaS <no-reply@saas.example>", "`From` of every email.")
    public_app_url: str = shared_field("PUBLIC_APP_URL", "http://localhost:3000",
                                       "Base of the links in emails (verify-email, reset-password, accept-invitation).")
    mailer_enabled: bool = shared_field("MAILER_ENABLED", True, "Run the mail sender in this process.")
    mail_poll_interval_s: float = shared_field("MAIL_POLL_INTERVAL_S", 2.0,
                                               "Mail sender polling interval (NOTIFY wakes it sooner).")
    mail_retry_max_delay_s: float = shared_field("MAIL_RETRY_MAX_DELAY_S", 60.0,
                                                 "Cap of the delay between SMTP attempts (it doubles per failure).")
    mail_smtp_timeout_s: float = shared_field("MAIL_SMTP_TIMEOUT_S", 10.0, "Timeout of each SMTP exchange.")
    mail_retention_s: int = shared_field("MAIL_RETENTION_S", 7 * 24 * 3600,
                                         "How long sent (or refused) mail rows are kept (bodies are erased at once).")
