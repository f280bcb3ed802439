"""Fixed-window request limits in Redis for the email-sending routes (shared by every replica).

Counted and checked atomically; the email key is the hash of the normalised address whether or
not an account has it, so a 429 never tells whether the account exists.
"""
from __future__ import annotations

import math

import redis.asyncio as aioredis

from shared import redis_keys
from shared.errors import EmailRequestThrottled, ServiceUnavailable

from ..redis_errors import REDIS_ERRORS
from ..sessions.throttle import WINDOW_HIT_LUA, email_digest

THROTTLED_DETAIL = "Too many requests for this email; try again later."


def reset_email_key(email: str) -> str:
    return redis_keys.password_reset_requests_email(email_digest(email))


reset_ip_key = redis_keys.password_reset_requests_address
verification_user_key = redis_keys.verification_requests_user


class EmailRequestLimits:
    def __init__(self, redis: aioredis.Redis, *, window_s: int):
        self.window_ms = window_s * 1000
        self._hit = redis.register_script(WINDOW_HIT_LUA)

    async def hit(self, limits: list[tuple[str, int]]) -> None:
        """Count one request against every (key, limit), or raise 429 when one is spent."""
        try:
            wait_ms = int(await self._hit(keys=[k for k, _ in limits], args=[self.window_ms, *[n for _, n in limits]]))
        except REDIS_ERRORS:
            raise ServiceUnavailable("This is temporarily unavailable; try again shortly.") from None
        if wait_ms > 0:
            raise EmailRequestThrottled(THROTTLED_DETAIL, retry_after=math.ceil(wait_ms / 1000))
