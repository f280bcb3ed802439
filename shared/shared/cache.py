"""The Redis client of a process, opened and closed in a cleanup context."""
from __future__ import annotations

import redis.asyncio as aioredis
from aiohttp import web

from .config import BaseServiceSettings

REDIS = web.AppKey("redis", aioredis.Redis)


def redis_ctx(settings: BaseServiceSettings):
    async def ctx(app: web.Application):
        client = aioredis.Redis.from_url(settings.redis_url, socket_timeout=1.0, socket_connect_timeout=1.0,
                                         health_check_interval=15, decode_responses=False)
        app[REDIS] = client
        yield
        await client.aclose()
    return ctx


async def check_redis(app: web.Application) -> None:
    await app[REDIS].ping()
