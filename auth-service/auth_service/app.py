from pathlib import Path

from aiohttp import web

from shared.app import create_service_app
from shared.auth import jwks_verifier_ctx
from shared.service import gunicorn_factory

from .config import Settings

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def create_app(settings: Settings) -> web.Application:
    app = create_service_app(settings, use_redis=True)
    app.cleanup_ctx.append(jwks_verifier_ctx(settings))
    return app


gunicorn_app = gunicorn_factory(Settings, create_app)
