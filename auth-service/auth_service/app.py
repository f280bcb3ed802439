from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import asyncpg
from aiohttp import web

from shared.app import create_service_app
from shared.auth import TOKEN_VERIFIER, StaticKeys, TokenVerifier
from shared.cache import REDIS
from shared.db import DB_POOL
from shared.mail import Mailer, mail_sender_ctx
from shared.mail.sender import check_mail
from shared.messaging import Event
from shared.messaging.consumer import EventConsumer, consumer_ctx, consumer_ready_check
from shared.service import gunicorn_factory
from shared.web import add_ready_check

from .account.limits import EmailRequestLimits
from .account.service import ACCOUNTS, AccountService
from .api_keys.service import API_KEYS, ApiKeyService
from .config import Settings
from .consumers import invitations as invitation_events
from .consumers.memberships import BINDINGS, membership_handler
from .keys.ring import KEYRING, KEYRING_JWKS, load_keyring
from .revocation import REBUILDER, REVOCATIONS, RevocationRebuilder, Revocations
from .routes import setup_routes
from .security_log.service import security_log_ctx
from .sessions.service import SESSIONS, SessionService
from .sessions.throttle import LoginThrottle
from .staff.service import STAFF, StaffService
from .tenants.client import TENANT_CLIENT, TenantClient
from .tokens.service import AccessTokenIssuer
from .users.passwords import PasswordHasher
from .users.service import USERS, UserService

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
PASSWORD_HASHER = web.AppKey("password_hasher", PasswordHasher)
MEMBERSHIP_CONSUMER = web.AppKey("membership_consumer", EventConsumer)
INVITATION_CONSUMER = web.AppKey("invitation_consumer", EventConsumer)


async def check_membership_consumer(app: web.Application) -> dict[str, int]:
    consumer = app[MEMBERSHIP_CONSUMER]
    if not consumer.connected:
        raise ConnectionError("membership consumer is not connected")
    return {"processed": consumer.processed_total}


def services_ctx(settings: Settings) -> Callable[[web.Application], AsyncIterator[None]]:
    """Builds the services once the pools exist, and closes what they own."""
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        hasher = PasswordHasher(settings)
        await hasher.start()
        http = aiohttp.ClientSession()
        tenant = TenantClient(http, base_url=settings.tenant_url,
                              internal_token=settings.internal_api_token.get_secret_value(),
                              timeout_s=settings.tenant_timeout_s)
        throttle = LoginThrottle(app[REDIS], max_per_account_address=settings.login_max_failures_per_account_address,
                                 max_per_account=settings.login_max_failures_per_account,
                                 max_per_ip=settings.login_max_failures_per_ip,
                                 window_s=settings.login_failure_window_s)
        revocations = Revocations(app[REDIS], ttl_s=settings.revocation_ttl_s)
        rebuilder = RevocationRebuilder(revocations, app[DB_POOL], interval_s=settings.revocation_check_interval_s)
        issuer = AccessTokenIssuer(app[KEYRING], issuer=settings.jwt_issuer, audience=settings.jwt_audience,
                                   ttl_s=settings.access_token_ttl_s)
        sessions = SessionService(pool=app[DB_POOL], settings=settings, hasher=hasher, throttle=throttle,
                                  tenant=tenant, issuer=issuer, revocations=revocations)
        app[PASSWORD_HASHER] = hasher
        app[TENANT_CLIENT] = tenant
        app[REVOCATIONS] = revocations
        app[REBUILDER] = rebuilder
        rebuilder.start()
        app[SESSIONS] = sessions
        accounts = AccountService(pool=app[DB_POOL], settings=settings, hasher=hasher, sessions=sessions,
                                  mailer=Mailer(mail_from=settings.mail_from, public_app_url=settings.public_app_url),
                                  limits=EmailRequestLimits(app[REDIS], window_s=settings.account_email_window_s))
        app[ACCOUNTS] = accounts
        app[API_KEYS] = ApiKeyService(pool=app[DB_POOL], revocations=revocations, settings=settings, issuer=issuer)
        app[STAFF] = StaffService(pool=app[DB_POOL], settings=settings, tenant=tenant, issuer=issuer)
        app[USERS] = UserService(pool=app[DB_POOL], settings=settings, hasher=hasher, throttle=throttle,
                                 tenant=tenant, sessions=sessions, accounts=accounts)
        yield
        await rebuilder.stop()
        await http.close()
        hasher.close()
    return ctx


def _membership_events(app: web.Application) -> Callable[[asyncpg.Connection, Event], Awaitable[None]]:
    # The services exist only once services_ctx ran; the consumer starts after it.
    async def handle(conn: asyncpg.Connection, event: Event) -> None:
        return await membership_handler(app[SESSIONS], app[REVOCATIONS], app[API_KEYS])(conn, event)
    return handle


def create_app(settings: Settings) -> web.Application:
    keyring = load_keyring(settings)  # fails start-up loudly when no key is configured
    app = create_service_app(settings, use_redis=True)
    app[KEYRING] = keyring
    app[KEYRING_JWKS] = keyring.jwks()
    # This service verifies its own tokens in-process, with the keys it publishes.
    app[TOKEN_VERIFIER] = TokenVerifier(StaticKeys(app[KEYRING_JWKS]), issuer=settings.jwt_issuer,
                                        audience=settings.jwt_audience, leeway_s=settings.jwt_leeway_s)
    app.cleanup_ctx.append(services_ctx(settings))
    if settings.membership_consumer_enabled:
        app.cleanup_ctx.append(consumer_ctx(
            settings, group=settings.membership_consumer_group, bindings=BINDINGS,
            handler=_membership_events(app), key=MEMBERSHIP_CONSUMER))
        # Not required: sign-in keeps working while revocation marks catch up.
        add_ready_check(app, "membership_consumer", check_membership_consumer, required=False)
    if settings.invitation_consumer_enabled:
        async def invitation_events_handler(conn: asyncpg.Connection, event: Event) -> None:
            return await invitation_events.invitation_handler(app[ACCOUNTS])(conn, event)
        app.cleanup_ctx.append(consumer_ctx(
            settings, group=settings.invitation_consumer_group, bindings=invitation_events.BINDINGS,
            handler=invitation_events_handler, key=INVITATION_CONSUMER))
        add_ready_check(app, "invitation_consumer", consumer_ready_check(INVITATION_CONSUMER), required=False)
    # The mailer of verification and reset emails (tenant-service runs its own for invitations).
    app.cleanup_ctx.append(mail_sender_ctx(settings))
    add_ready_check(app, "smtp", check_mail, required=False)
    app.cleanup_ctx.append(security_log_ctx(settings))
    setup_routes(app)
    return app


gunicorn_app = gunicorn_factory(Settings, create_app)
