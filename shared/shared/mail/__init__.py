"""The product's emails: written to ``<schema>.mail_outbox`` in the transaction of the change
that causes them (``Mailer.enqueue``), sent over SMTP by ``MailSender`` (a background task of
the service process, like the outbox relay). See shared/README.md, "Emails"."""
from .config import MailSettings
from .outbox import Mailer
from .sender import MAIL_SENDER, MailSender, SmtpTarget, mail_sender_ctx

__all__ = ["MAIL_SENDER", "MailSender", "MailSettings", "Mailer", "SmtpTarget", "mail_sender_ctx"]
