"""What counts as "Redis did not answer"."""
import asyncio

from redis.exceptions import RedisError

REDIS_ERRORS = (RedisError, OSError, asyncio.TimeoutError)
