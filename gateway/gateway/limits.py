"""Rate limits and revocation in one Redis round trip per request.

One Lua script reads the caller's revocation keys (shared/README.md, "Revocation keys") and
counts the request against its fixed window. When Redis cannot be reached the gateway stops
asking it for ``redis_retry_s`` (no request waits on a dead Redis more than once per interval)
and applies the Redis-down policy:

* requests without a token and authenticated reads pass, limited by an in-process fallback
  counter (the same limits, per gateway replica instead of shared);
* authenticated writes are refused with 503 (``GATEWAY_REDIS_DOWN_WRITES=closed``, default),
  since a revoked session or a removed member could otherwise still change data, or pass like
  reads with ``open``.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from prometheus_client import Counter

from shared import redis_keys
from shared.errors import RateLimited, ServiceUnavailable, Unauthorized

from .auth import Caller
from .resp import RedisPipe, RedisReplyError, RedisUnavailable

log = logging.getLogger("gateway.limits")

RATE_LIMITED = Counter("gateway_rate_limited_total", "Requests refused by the rate limit", ["scope"])
REDIS_DOWN = Counter("gateway_redis_unavailable_total",
                     "Requests decided without Redis (rate limit and revocation unchecked)", ["decision"])
REVOKED = Counter("gateway_revoked_tokens_total", "Requests refused because the token was revoked")

# KEYS[1]: the rate counter; KEYS[2]: rv:sid; KEYS[3], KEYS[4]: rv:ut, rv:t (absent without an org);
# KEYS[5]: rv:r (only for a token carrying a custom role)
# ARGV[1]: limit (0: no limit), ARGV[2]: window ms, ARGV[3]: the token's iat_ms
# Returns {0, 0, 0} when revoked, else {1, count, ms until the window resets}.
GUARD_LUA = """
if #KEYS > 1 then
  if redis.call('EXISTS', KEYS[2]) == 1 then return {0, 0, 0} end
  if #KEYS > 2 then
    local iat = tonumber(ARGV[3])
    local marks = redis.call('MGET', unpack(KEYS, 3))
    for i = 1, #marks do
      local mark = tonumber(marks[i])
      if mark and iat < mark then return {0, 0, 0} end
    end
  end
end
if tonumber(ARGV[1]) <= 0 then return {1, 0, 0} end
local n = redis.call('INCR', KEYS[1])
local ttl = -1
if n > 1 then ttl = redis.call('PTTL', KEYS[1]) end
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return {1, n, ttl}
"""


@dataclass(frozen=True, slots=True)
class Quota:
    limit: int
    remaining: int
    reset_s: int

    def headers(self) -> dict[str, str]:
        if self.limit <= 0:
            return {}
        return {"RateLimit-Limit": str(self.limit), "RateLimit-Remaining": str(self.remaining),
                "RateLimit-Reset": str(self.reset_s)}


class LocalWindow:
    """Fixed-window counters in process memory: the fallback while Redis is away."""

    def __init__(self, max_keys: int = 100_000):
        self.max_keys = max_keys
        self._windows: dict[str, list[float]] = {}

    def hit(self, key: str, window_s: float) -> tuple[int, float]:
        now = time.monotonic()
        w = self._windows.get(key)
        if w is None or w[0] <= now:
            if len(self._windows) >= self.max_keys:
                self._windows.clear()
            w = self._windows[key] = [now + window_s, 0]
        w[1] += 1
        return int(w[1]), w[0] - now


class Guard:
    def __init__(self, redis: RedisPipe, *, window_s: int, public_limit: int, user_limit: int,
                 retry_s: float = 1.0, down_writes: str = "closed"):
        self.redis = redis
        self.script_sha = redis.script(GUARD_LUA)
        self.window_ms = int(window_s * 1000)
        self.window_s = window_s
        self.public_limit, self.user_limit = public_limit, user_limit
        self.retry_s, self.down_writes = retry_s, down_writes
        self.local = LocalWindow()
        self._skip_until = 0.0

    @property
    def redis_available(self) -> bool:
        return time.monotonic() >= self._skip_until

    async def check(self, caller: Caller | None, client_ip: str, *, write: bool) -> Quota:
        """Raises Unauthorized (revoked), RateLimited, or ServiceUnavailable (a write without
        Redis); returns the quota for the RateLimit-* headers."""
        if caller is None:
            limit, rate_key, scope = self.public_limit, redis_keys.rate_client(client_ip), "client"
            keys = [rate_key]
            iat_ms = 0
        else:
            limit, rate_key, scope = self.user_limit, caller.rate_key, "user"
            keys = [rate_key, *caller.revocation_keys]
            iat_ms = caller.iat_ms
        if time.monotonic() >= self._skip_until:
            try:
                allowed, count, ttl_ms = await self.redis.evalsha(self.script_sha, keys,
                                                                  [limit, self.window_ms, iat_ms])
            except (RedisUnavailable, RedisReplyError, OSError, asyncio.TimeoutError, ValueError) as exc:
                self._skip_until = time.monotonic() + self.retry_s
                log.warning("redis unavailable; deciding without it",
                            extra={"error": type(exc).__name__, "retry_in_s": self.retry_s})
            else:
                if not allowed:
                    REVOKED.inc()
                    raise Unauthorized("The access token has been revoked.")
                return self._quota(limit, int(count), int(ttl_ms) / 1000, scope)
        # Redis is unavailable: the policy in the module docstring.
        if caller is not None and write and self.down_writes == "closed":
            REDIS_DOWN.labels("refused").inc()
            raise ServiceUnavailable("Changes are briefly unavailable; try again in a moment.",
                                     headers={"Retry-After": str(max(1, round(self.retry_s)))})
        REDIS_DOWN.labels("allowed").inc()
        if limit <= 0:
            return Quota(0, 0, 0)
        count, left_s = self.local.hit(rate_key, self.window_s)
        return self._quota(limit, count, left_s, scope)

    @staticmethod
    def _quota(limit: int, count: int, left_s: float, scope: str) -> Quota:
        if limit <= 0:
            return Quota(0, 0, 0)
        reset_s = max(1, int(left_s + 0.999))
        quota = Quota(limit, max(0, limit - count), reset_s)
        if count > limit:
            RATE_LIMITED.labels(scope).inc()
            exc = RateLimited("Too many requests; retry after the time in Retry-After.", retry_after=reset_s)
            exc.headers.update(quota.headers())
            raise exc
        return quota
