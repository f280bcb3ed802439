"""The skeleton every service process is built on: the shared edge plus the pools it uses,
each opened in a cleanup context, with readiness covering each of them."""
from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web
from aiohttp.typedefs import Middleware

from .cache import check_redis, redis_ctx
from .config import BaseServiceSettings
from .db import DB_POOL, pool_ctx
from .messaging.relay import OUTBOX_RELAY, backlog, relay_ctx, wake_relay_after_write
from .web import add_ready_check, base_app


async def check_db(app: web.Application) -> None:
    async with app[DB_POOL].acquire() as conn:
        await conn.fetchval("SELECT 1")


async def check_broker(app: web.Application) -> dict[str, bool | int | float]:
    """Reported in the readiness body; not required, since writes keep working through the
    outbox while the broker is away."""
    relay = app[OUTBOX_RELAY]
    pending, oldest = await backlog(app[DB_POOL])
    state: dict[str, bool | int | float] = {"connected": relay.broker_connected, "outbox_pending": pending,
             "outbox_oldest_age_s": round(oldest, 3)}
    if not relay.broker_connected:
        raise BrokerDown(state)
    return state


class BrokerDown(Exception):
    pass


def create_service_app(settings: BaseServiceSettings, *, use_redis: bool = False, use_relay: bool = True,
                       middlewares: Sequence[Middleware] = (), check_role: bool = True) -> web.Application:
    """``check_role``: refuse to start when the database role can bypass row-level security
    (shared.db.check_least_privilege). Every service keeps it; only the shared library's own
    tests of the skeleton, on scratch schemas, turn it off."""
    app = base_app(settings, middlewares=middlewares)
    app.cleanup_ctx.append(pool_ctx(settings, check_role=check_role))
    add_ready_check(app, "postgres", check_db)
    if use_redis:
        app.cleanup_ctx.append(redis_ctx(settings))
        add_ready_check(app, "redis", check_redis)
    if use_relay:
        app.cleanup_ctx.append(relay_ctx(settings))
        app.on_response_prepare.append(wake_relay_after_write)
        add_ready_check(app, "rabbitmq", check_broker, required=False)
    return app
