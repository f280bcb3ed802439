"""Failed-login throttling, in Redis so every replica shares the counts: per account and
client address first (``max_per_account_address``, small: a guesser is stopped quickly), per
account from any address only at a much higher count (``max_per_account``: wrong passwords sent
from elsewhere do not lock the owner out at the first few), and per client address over every
account (``max_per_ip``).

An attempt is counted when it starts (atomically with the limit check, so parallel guesses
cannot slip past the limit) and refunded when the password was right. Accounts are keyed by
the hash of the normalised email, whether or not the account exists, so the answer — and the
``Retry-After`` — never reveals existence. If Redis does not answer, sign-in fails closed.
"""
from __future__ import annotations

import hashlib
import math

import redis.asyncio as aioredis

from shared import redis_keys
from shared.errors import LoginThrottled, ServiceUnavailable

from ..redis_errors import REDIS_ERRORS

# Fixed windows over several counters at once (also the email-request limits, account/limits.py):
# refuse with the milliseconds left when any counter is spent, else count one on each.
# KEYS: the counters; ARGV[1]: window ms; ARGV[i + 1]: the limit of KEYS[i].
WINDOW_HIT_LUA = """
for i = 1, #KEYS do
  local count = tonumber(redis.call('GET', KEYS[i]) or '0')
  if count >= tonumber(ARGV[i + 1]) then
    local ttl = redis.call('PTTL', KEYS[i])
    if ttl < 0 then
      redis.call('PEXPIRE', KEYS[i], ARGV[1])
      ttl = tonumber(ARGV[1])
    end
    return ttl
  end
end
for i = 1, #KEYS do
  if redis.call('INCR', KEYS[i]) == 1 then
    redis.call('PEXPIRE', KEYS[i], ARGV[1])
  end
end
return 0
"""

# Refund: forget the account's failures (KEYS[1], KEYS[2]: per address and overall); give the
# address its attempt back (KEYS[3]; never creating a key without expiry, should the window
# have ended meanwhile).
_SUCCEEDED = """
redis.call('DEL', KEYS[1])
if KEYS[2] then redis.call('DEL', KEYS[2]) end
if KEYS[3] and redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('DECR', KEYS[3])
end
return 1
"""

THROTTLED_DETAIL = "Too many failed sign-in attempts; try again later."


def email_digest(email: str) -> str:
    """How a normalised email names its counters: a hash, whether or not an account has it."""
    return hashlib.sha256(email.encode()).hexdigest()[:32]


class LoginThrottle:
    def __init__(self, redis: aioredis.Redis, *, max_per_account_address: int, max_per_account: int,
                 max_per_ip: int, window_s: int):
        self.redis = redis
        self.max_per_account_address = max_per_account_address
        self.max_per_account, self.max_per_ip, self.window_ms = max_per_account, max_per_ip, window_s * 1000
        self._begin = redis.register_script(WINDOW_HIT_LUA)
        self._succeeded = redis.register_script(_SUCCEEDED)

    @classmethod
    def account_key(cls, email: str) -> str:
        return redis_keys.login_failures_account(email_digest(email))

    @classmethod
    def account_address_key(cls, email: str, ip: str) -> str:
        return redis_keys.login_failures_account_address(email_digest(email), ip)

    @staticmethod
    def ip_key(ip: str) -> str:
        return redis_keys.login_failures_address(ip)

    def _keys(self, email: str, ip: str | None) -> tuple[list[str], list[int]]:
        if not ip:
            # No address known: the account counts at the per-address limit.
            return [self.account_key(email)], [self.max_per_account_address]
        return ([self.account_address_key(email, ip), self.account_key(email), self.ip_key(ip)],
                [self.max_per_account_address, self.max_per_account, self.max_per_ip])

    async def begin(self, email: str, ip: str | None) -> None:
        """Count an attempt, or raise 429 when the account or the address is over its limit."""
        keys, limits = self._keys(email, ip)
        try:
            wait_ms = int(await self._begin(keys=keys, args=[self.window_ms, *limits]))
        except REDIS_ERRORS:
            raise ServiceUnavailable("Sign-in is temporarily unavailable; try again shortly.") from None
        if wait_ms > 0:
            raise LoginThrottled(THROTTLED_DETAIL, retry_after=math.ceil(wait_ms / 1000))

    async def succeeded(self, email: str, ip: str | None) -> None:
        """The password was right: the account's failures are forgiven, the attempt refunded."""
        keys, _ = self._keys(email, ip)
        try:
            await self._succeeded(keys=keys, args=[])
        except REDIS_ERRORS:
            pass  # a refund that did not happen only makes the limit stricter
