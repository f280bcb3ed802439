from pathlib import Path

from aiohttp import web

from shared.app import create_service_app
from shared.auth import jwks_verifier_ctx
from shared.db import DB_POOL
from shared.service import gunicorn_factory
from shared.web import add_ready_check

from .comments.service import CommentService
from .config import Settings
from .consumers.memberships import membership_consumer_ctx
from .keys import COMMENT_SERVICE, MEMBERSHIP_CONSUMER, TICKET_SERVICE
from .routes import setup_routes
from .tickets.service import TicketService

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def services_ctx(settings: Settings):
    async def ctx(app: web.Application):
        pool = app[DB_POOL]
        secret = settings.cursor_secret.get_secret_value()
        app[TICKET_SERVICE] = TicketService(pool, cursor_secret=secret, idempotency_ttl_s=settings.idempotency_ttl_s,
                                            create_batch_max=settings.create_batch_max)
        app[COMMENT_SERVICE] = CommentService(pool, cursor_secret=secret)
        yield
    return ctx


async def check_membership_consumer(app: web.Application) -> dict:
    """Reported, not required: ticket routes keep working on the last known memberships."""
    consumer = app[MEMBERSHIP_CONSUMER]
    state = {"connected": consumer.connected, "processed": consumer.processed_total}
    if not consumer.connected:
        raise ConnectionError("membership consumer is not connected")
    return state


def create_app(settings: Settings) -> web.Application:
    app = create_service_app(settings, use_redis=False)
    app.cleanup_ctx.append(jwks_verifier_ctx(settings))
    app.cleanup_ctx.append(services_ctx(settings))
    if settings.consumers_enabled:
        app.cleanup_ctx.append(membership_consumer_ctx(settings, group=settings.membership_consumer_group,
                                                       key=MEMBERSHIP_CONSUMER))
        add_ready_check(app, "membership_consumer", check_membership_consumer, required=False)
    setup_routes(app)
    return app


gunicorn_app = gunicorn_factory(Settings, create_app)
