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

A Redis that answers but has lost its data (restarted with nothing kept) does not know the
revocations either: until auth-service has rebuilt them from PostgreSQL and written
``rv:ready`` (auth_service.revocation), authenticated requests get the same policy (reads
pass, writes 503), while the rate limits keep counting in Redis.

Failed token verifications (forged, unknown ``kid``, expired, malformed) are counted per client
address (``GATEWAY_RATE_LIMIT_BAD_TOKENS`` per window): past the limit the address gets 429
instead of 401 until the window ends.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from prometheus_client import Counter

from shared import redis_keys
from shared.errors import BadTokenThrottled, RateLimited, ServiceUnavailable, TokenRevoked

from .auth import Caller
from .resp import RedisPipe, RedisReplyError, RedisUnavailable

log = logging.getLogger("gateway.limits")

RATE_LIMITED = Counter("gateway_rate_limited_total", "Requests refused by the rate limit", ["scope"])
REDIS_DOWN = Counter("gateway_redis_unavailable_total",
                     "Requests decided without Redis (rate limit and revocation unchecked)", ["decision"])
REVOKED = Counter("gateway_revoked_tokens_total", "Requests refused because the token was revoked")
REVOCATION_UNKNOWN = Counter("gateway_revocation_unknown_total",
                             "Authenticated requests while Redis had not been rebuilt yet", ["decision"])
BAD_TOKENS = Counter("gateway_bad_tokens_total", "Requests whose access token failed verification")

# KEYS[1]: the rate counter; with a token: KEYS[2]: rv:ready, KEYS[3]: a flag (rv:sid, or rv:ak
# for an API key), KEYS[4..]: epoch-ms marks (rv:ut, rv:t; rv:r for a token carrying a custom
# role; rv:st for staff access; absent without an org)
# ARGV[1]: limit (0: no limit), ARGV[2]: window ms, ARGV[3]: the token's iat_ms
# Returns {0, 0, 0} when revoked, else {1, count, ms until the window resets}, or {2, ...} when
# the revocation state is not known (rv:ready missing: Redis lost its data, not rebuilt yet).
GUARD_LUA = """
local verdict = 1
if #KEYS > 1 then
  if redis.call('EXISTS', KEYS[2]) == 0 then
    verdict = 2
  else
    if redis.call('EXISTS', KEYS[3]) == 1 then return {0, 0, 0} end
    if #KEYS > 3 then
      local iat = tonumber(ARGV[3])
      local marks = redis.call('MGET', unpack(KEYS, 4))
      for i = 1, #marks do
        local mark = tonumber(marks[i])
        if mark and iat < mark then return {0, 0, 0} end
      end
    end
  end
end
if tonumber(ARGV[1]) <= 0 then return {verdict, 0, 0} end
local n = redis.call('INCR', KEYS[1])
local ttl = -1
if n > 1 then ttl = redis.call('PTTL', KEYS[1]) end
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return {verdict, n, ttl}
"""

# KEYS[1]: the address's bad-token counter; ARGV[1]: window ms. Returns {count, ms left}.
BAD_TOKEN_LUA = """
local n = redis.call('INCR', KEYS[1])
local ttl = -1
if n > 1 then ttl = redis.call('PTTL', KEYS[1]) end
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
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
                 api_key_limit: int | None = None, retry_s: float = 1.0, down_writes: str = "closed",
                 bad_token_limit: int = 0):
        self.redis = redis
        self.script_sha = redis.script(GUARD_LUA)
        self.bad_token_sha = redis.script(BAD_TOKEN_LUA)
        self.bad_token_limit = bad_token_limit
        self.window_ms = int(window_s * 1000)
        self.window_s = window_s
        self.public_limit, self.user_limit = public_limit, user_limit
        self.api_key_limit = user_limit if api_key_limit is None else api_key_limit
        self.retry_s, self.down_writes = retry_s, down_writes
        self.local = LocalWindow()
        self._skip_until = 0.0

    @property
    def redis_available(self) -> bool:
        return time.monotonic() >= self._skip_until

    async def check(self, caller: Caller | None, client_ip: str, *, write: bool) -> Quota:
        """Raises TokenRevoked, RateLimited, or ServiceUnavailable (a write without
        Redis); returns the quota for the RateLimit-* headers."""
        if caller is None:
            limit, rate_key, scope = self.public_limit, redis_keys.rate_client(client_ip), "client"
            keys = [rate_key]
            iat_ms = 0
        else:
            if caller.api_key_id is not None:
                limit, scope = self.api_key_limit, "api_key"
            else:
                limit, scope = self.user_limit, "user"
            rate_key = caller.rate_key
            keys = [rate_key, redis_keys.REVOCATION_READY, *caller.revocation_keys]
            iat_ms = caller.iat_ms
        if time.monotonic() >= self._skip_until:
            try:
                allowed, count, ttl_ms = await self.redis.evalsha(self.script_sha, keys,
                                                                  [limit, self.window_ms, iat_ms])
            except (TimeoutError, RedisUnavailable, RedisReplyError, OSError, ValueError) as exc:
                self._skip_until = time.monotonic() + self.retry_s
                log.warning("redis unavailable; deciding without it",
                            extra={"error": type(exc).__name__, "retry_in_s": self.retry_s})
            else:
                if not allowed:
                    REVOKED.inc()
                    raise TokenRevoked()
                if int(allowed) == 2 and caller is not None:
                    # Redis answers but has lost the revocations: the Redis-down policy.
                    if write and self.down_writes == "closed":
                        REVOCATION_UNKNOWN.labels("refused").inc()
                        raise ServiceUnavailable("Changes are briefly unavailable; try again in a moment.",
                                                 headers={"Retry-After": "1"})
                    REVOCATION_UNKNOWN.labels("allowed").inc()
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

    async def bad_token(self, client_ip: str) -> None:
        """Count a failed token verification of ``client_ip``; raises RateLimited past the limit
        (the caller raises its 401 otherwise)."""
        BAD_TOKENS.inc()
        if self.bad_token_limit <= 0:
            return
        key = redis_keys.rate_bad_token(client_ip)
        hit: tuple[int, float] | None = None  # (count, seconds left in the window)
        if time.monotonic() >= self._skip_until:
            try:
                count, ttl_ms = await self.redis.evalsha(self.bad_token_sha, [key], [self.window_ms])
                hit = count, int(ttl_ms) / 1000
            except (TimeoutError, RedisUnavailable, RedisReplyError, OSError, ValueError) as exc:
                self._skip_until = time.monotonic() + self.retry_s
                log.warning("redis unavailable; deciding without it",
                            extra={"error": type(exc).__name__, "retry_in_s": self.retry_s})
        if hit is None:
            hit = self.local.hit(key, self.window_s)
        count, left_s = hit
        if int(count) > self.bad_token_limit:
            RATE_LIMITED.labels("bad_token").inc()
            raise BadTokenThrottled("Too many requests with an invalid access token; retry after the time in "
                              "Retry-After.", retry_after=max(1, int(left_s + 0.999)))

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
