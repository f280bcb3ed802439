from __future__ import annotations

import aiohttp
from aiohttp import web

from shared.service import gunicorn_factory
from shared.web import add_ready_check, base_app

from .config import Settings
from .proxy import Upstream, forward

SESSION = web.AppKey("upstream_session", aiohttp.ClientSession)
UPSTREAMS = web.AppKey("upstreams", dict)

ROUTES = [("/v1/auth", "auth"), ("/.well-known/jwks.json", "auth"), ("/v1/organizations", "tenant"),
          ("/v1/invitations", "tenant"), ("/v1/tickets", "ticket")]


def _urls(value: str) -> list[str]:
    return [u.strip().rstrip("/") for u in value.split(",") if u.strip()]


def create_app(settings: Settings) -> web.Application:
    app = base_app(settings)
    app[UPSTREAMS] = {
        "auth": Upstream("auth", _urls(settings.auth_upstreams)),
        "tenant": Upstream("tenant", _urls(settings.tenant_upstreams)),
        "ticket": Upstream("ticket", _urls(settings.ticket_upstreams)),
    }

    async def session_ctx(app):
        timeout = aiohttp.ClientTimeout(total=settings.total_timeout_s, sock_connect=settings.connect_timeout_s)
        app[SESSION] = aiohttp.ClientSession(timeout=timeout, auto_decompress=False,
                                             connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=60))
        yield
        await app[SESSION].close()
    app.cleanup_ctx.append(session_ctx)

    def handler_for(pool: str):
        async def handle(request: web.Request) -> web.StreamResponse:
            return await forward(request, request.app[UPSTREAMS][pool], request.app[SESSION])
        return handle

    for prefix, pool in ROUTES:
        h = handler_for(pool)
        app.router.add_route("*", prefix, h)
        if not prefix.endswith(".json"):
            app.router.add_route("*", prefix + "/{tail:.*}", h)

    for name in ("auth", "tenant", "ticket"):
        async def check(app, name=name):
            up = app[UPSTREAMS][name]
            async with app[SESSION].get(up.pick() + "/health/ready") as r:
                if r.status != 200:
                    raise RuntimeError(f"{name} not ready")
        add_ready_check(app, name, check)
    return app


gunicorn_app = gunicorn_factory(Settings, create_app)
