from pathlib import Path

from aiohttp import web

from shared.app import create_service_app
from shared.auth import jwks_verifier_ctx
from shared.db import DB_POOL
from shared.pagination import CursorCodec
from shared.service import gunicorn_factory

from .config import Settings
from .keys import ORGANIZATIONS
from .organizations.service import OrganizationService
from .routes import setup_routes

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def services_ctx(settings: Settings):
    """Builds the services on the pool opened by the preceding cleanup context."""
    async def ctx(app: web.Application):
        pool = app[DB_POOL]
        secret = settings.cursor_secret.get_secret_value()
        app[ORGANIZATIONS] = OrganizationService(pool, cursors=CursorCodec(secret, "organizations"))
        yield
    return ctx


def create_app(settings: Settings) -> web.Application:
    app = create_service_app(settings, use_redis=False)
    app.cleanup_ctx.append(jwks_verifier_ctx(settings))
    app.cleanup_ctx.append(services_ctx(settings))
    setup_routes(app)
    return app


gunicorn_app = gunicorn_factory(Settings, create_app)
