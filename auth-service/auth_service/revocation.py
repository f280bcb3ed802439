"""The revocation keys the gateway reads (shared/README.md, "Revocation keys in Redis").

Keys are written before the transaction that ends the session commits: if Redis does not
answer, the whole change rolls back and the caller gets a 503, rather than a session that is
ended in the database while its access tokens keep working.
"""
from __future__ import annotations

import time
from collections.abc import Iterable
from uuid import UUID

import redis.asyncio as aioredis
from aiohttp import web

from shared import redis_keys
from shared.errors import ServiceUnavailable

from .redis_errors import REDIS_ERRORS

# Marks only move forward: a late, out-of-order event never lowers a newer mark.
_RAISE_MARK = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""


sid_key = redis_keys.session_revoked
user_org_key = redis_keys.user_org_stale
org_key = redis_keys.org_stale


class Revocations:
    def __init__(self, redis: aioredis.Redis, *, ttl_s: int):
        self.redis, self.ttl_s = redis, ttl_s
        self._raise_mark = redis.register_script(_RAISE_MARK)

    async def end_sessions(self, session_ids: Iterable[UUID]) -> None:
        ids = list(session_ids)
        if not ids:
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for sid in ids:
                    pipe.set(sid_key(sid), b"1", ex=self.ttl_s)
                await pipe.execute()
        except REDIS_ERRORS:
            raise ServiceUnavailable("Sessions cannot be ended right now; try again shortly.") from None

    async def _mark(self, key: str, mark_ms: int) -> None:
        # The key only has to outlive the tokens issued before the mark.
        remaining_ms = mark_ms + self.ttl_s * 1000 - int(time.time() * 1000)
        if remaining_ms <= 0:
            return
        await self._raise_mark(keys=[key], args=[mark_ms, remaining_ms])

    async def mark_user_org(self, user_id: UUID, organization_id: UUID, mark_ms: int) -> None:
        await self._mark(user_org_key(user_id, organization_id), mark_ms)

    async def mark_org(self, organization_id: UUID, mark_ms: int) -> None:
        await self._mark(org_key(organization_id), mark_ms)

    async def mark_role(self, organization_id: UUID, role_name: str, mark_ms: int) -> None:
        await self._mark(redis_keys.role_stale(organization_id, role_name), mark_ms)


REVOCATIONS = web.AppKey("revocations", Revocations)
