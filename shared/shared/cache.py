"""The Redis client of a process, opened and closed in a cleanup context."""
from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import redis.asyncio as aioredis
from aiohttp import web
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .config import BaseServiceSettings

REDIS = web.AppKey("redis", aioredis.Redis)


def redis_ctx(settings: BaseServiceSettings) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        # A pooled connection that Redis dropped (a restart) fails its next command: that command
        # is sent again on a fresh connection (twice at most, 10-100 ms apart) instead of failing
        # the request; connections idle for more than 5 s are PINGed before use.
        client = aioredis.Redis.from_url(settings.redis_url, socket_timeout=1.0, socket_connect_timeout=1.0,
                                         health_check_interval=5, decode_responses=False,
                                         retry=Retry(ExponentialBackoff(cap=0.1, base=0.01), 2),
                                         retry_on_error=[RedisConnectionError, RedisTimeoutError])
        app[REDIS] = client
        yield
        await client.aclose()
    return ctx


async def check_redis(app: web.Application) -> None:
    await app[REDIS].ping()
