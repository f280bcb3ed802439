from pathlib import Path

from aiohttp import web

from shared.app import create_service_app
from shared.auth import jwks_verifier_ctx
from shared.db import DB_POOL
from shared.mail import Mailer, mail_sender_ctx
from shared.mail.sender import check_mail
from shared.messaging.consumer import consumer_ctx, consumer_ready_check
from shared.service import gunicorn_factory
from shared.web import add_ready_check

from .accounts.client import ACCOUNTS, accounts_ctx
from .audit_events.service import AuditEventService
from .config import Settings
from .consumers import users as users_consumer
from .invitations.service import InvitationService
from .keys import AUDIT_EVENTS, INVITATIONS, MEMBERS, ORGANIZATIONS, ROLES, USERS_CONSUMER
from .members.service import MemberService
from .organizations.service import OrganizationService
from .roles.service import RoleService
from .routes import setup_routes

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def services_ctx(settings: Settings):
    """Builds the services on the pool opened by the preceding cleanup context."""
    async def ctx(app: web.Application):
        pool = app[DB_POOL]
        secret = settings.cursor_secret.get_secret_value()
        app[ORGANIZATIONS] = OrganizationService(pool, cursor_secret=secret)
        app[MEMBERS] = MemberService(pool, cursor_secret=secret)
        app[INVITATIONS] = InvitationService(pool, cursor_secret=secret,
                                             ttl_s=settings.invitation_ttl_s, accounts=app[ACCOUNTS],
                                             mailer=Mailer(mail_from=settings.mail_from,
                                                           public_app_url=settings.public_app_url))
        app[ROLES] = RoleService(pool, cursor_secret=secret)
        app[AUDIT_EVENTS] = AuditEventService(pool, cursor_secret=secret)
        yield
    return ctx


def create_app(settings: Settings) -> web.Application:
    app = create_service_app(settings, use_redis=False)
    app.cleanup_ctx.append(jwks_verifier_ctx(settings))
    app.cleanup_ctx.append(accounts_ctx(settings))
    app.cleanup_ctx.append(services_ctx(settings))
    if settings.users_consumer_enabled:
        app.cleanup_ctx.append(consumer_ctx(settings, group=settings.users_consumer_group,
                                            bindings=users_consumer.BINDINGS, handler=users_consumer.handle_user_event,
                                            key=USERS_CONSUMER))
        # Not required: requests keep working while profiles catch up once the broker is back.
        add_ready_check(app, "users_consumer", consumer_ready_check(USERS_CONSUMER), required=False)
    # Invitation emails, sent from this service's own mail outbox (issue 13).
    app.cleanup_ctx.append(mail_sender_ctx(settings))
    add_ready_check(app, "smtp", check_mail, required=False)
    setup_routes(app)
    return app


gunicorn_app = gunicorn_factory(Settings, create_app)
