"""The revocation marks the gateway reads (shared/README.md, "Revocation keys in Redis"), kept in
PostgreSQL as well, and the rebuild of Redis from PostgreSQL after Redis lost its data.

A mark is a Redis key, a value and an expiry (``Mark``). ``Revocations.put(conn, marks)``
records the marks in ``auth.revocation_mark`` inside the caller's transaction and writes them
to Redis before that transaction commits: if Redis does not answer, the whole change rolls back
and the caller gets a 503, rather than a change that is in the database while the tokens it
should stop keep working. Any new kind of mark (custom-role changes, API-key or staff
revocation) goes through ``put`` and is then rebuilt like the others.

Clocks: a numeric mark ("tokens with ``iat_ms`` before this are stale") takes its time from
PostgreSQL (``db_clock_ms``), and so does the ``iat_ms`` of every access token auth-service
mints from a membership it read (sessions/service.py): one clock on both sides, taken for the
token BEFORE the membership is read and for the mark AFTER the change committed, so a token
minted from a membership read before a change is always older than the change's mark.

Rebuild (``RevocationRebuilder``): while ``rv:ready`` is missing from Redis, every auth
replica writes every unexpired mark from PostgreSQL to Redis (idempotent: ``SET`` for plain
marks, raise-only for numeric ones) and then sets ``rv:ready``, but only if ``rv:epoch`` still
holds the value it started with: a Redis restarted during the rebuild lost that key, so a
rebuild that wrote to the previous Redis can never declare the new one complete. Two replicas
rebuilding at once write the same values and the same ready key. The gateway treats a missing
``rv:ready`` as "revocation unknown" (the Redis-down policy).
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

import asyncpg
import redis.asyncio as aioredis
from aiohttp import web

from shared import redis_keys
from shared.errors import ServiceUnavailable

from .redis_errors import REDIS_ERRORS

log = logging.getLogger(__name__)

# ARGV: now_ms, then per mark: value, expires_at_ms, raise_only (1/0); KEYS: one per mark.
# Plain marks are SET; raise-only marks only move forward (a late, out-of-order write never
# lowers a newer mark). Expired marks are skipped.
_APPLY = """
local now = tonumber(ARGV[1])
for i = 1, #KEYS do
  local value, exp, raise = ARGV[3 * i - 1], tonumber(ARGV[3 * i]), ARGV[3 * i + 1]
  local px = exp - now
  if px > 0 then
    if raise == '1' then
      local cur = redis.call('GET', KEYS[i])
      if not cur or tonumber(value) > tonumber(cur) then
        redis.call('SET', KEYS[i], value, 'PX', px)
      elseif redis.call('PTTL', KEYS[i]) < px then
        redis.call('PEXPIRE', KEYS[i], px)
      end
    else
      local ttl = redis.call('PTTL', KEYS[i])
      if ttl < px then redis.call('SET', KEYS[i], value, 'PX', px) end
    end
  end
end
return #KEYS
"""

# KEYS[1]: rv:epoch, KEYS[2]: rv:ready; ARGV[1]: the epoch the rebuild started in, ARGV[2]: now.
_FINISH = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[2])
  return 1
end
return 0
"""

_UPSERT = """
INSERT INTO revocation_mark (key, value, raise_only, expires_at)
SELECT k, v, r, to_timestamp(e / 1000.0)
FROM unnest($1::text[], $2::text[], $3::bool[], $4::bigint[]) AS m(k, v, r, e)
ON CONFLICT (key) DO UPDATE SET
  value = CASE WHEN revocation_mark.raise_only AND EXCLUDED.raise_only
               AND revocation_mark.value::bigint > EXCLUDED.value::bigint
               THEN revocation_mark.value ELSE EXCLUDED.value END,
  raise_only = EXCLUDED.raise_only,
  expires_at = greatest(revocation_mark.expires_at, EXCLUDED.expires_at)
"""

BATCH = 500


@dataclass(frozen=True)
class Mark:
    """One revocation mark: a Redis key (defined in shared.redis_keys), its value, and the
    moment (epoch ms) after which nobody needs it. ``raise_only``: the value is a number that
    only moves forward (a lower value never replaces a higher one)."""
    key: str
    value: str
    expires_at_ms: int
    raise_only: bool = False


# PostgreSQL's clock (epoch ms) as a SQL expression: the one clock marks and token ``iat_ms``
# are compared on (a query may read it next to other columns, as the sign-in's user lookup does).
DB_CLOCK_MS_SQL = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"


async def db_clock_ms(conn: asyncpg.Connection) -> int:
    """PostgreSQL's clock (epoch ms): the one clock marks and token ``iat_ms`` are compared on."""
    return int(await conn.fetchval(f"SELECT {DB_CLOCK_MS_SQL}"))


def _now_ms() -> int:
    return int(time.time() * 1000)


class Revocations:
    def __init__(self, redis: aioredis.Redis, *, ttl_s: int):
        self.redis, self.ttl_s = redis, ttl_s
        self._apply = redis.register_script(_APPLY)
        self._finish = redis.register_script(_FINISH)

    # ------------------------------------------------------------------ writing

    async def put(self, conn: asyncpg.Connection, marks: Iterable[Mark]) -> None:
        """Record ``marks`` in PostgreSQL (the caller's transaction) and write them to Redis.
        Raises ServiceUnavailable (503) when Redis does not answer: the caller's transaction
        then rolls back."""
        marks = list(marks)
        if not marks:
            return
        await conn.execute(_UPSERT, [m.key for m in marks], [m.value for m in marks],
                           [m.raise_only for m in marks], [m.expires_at_ms for m in marks])
        try:
            await self._write(marks)
        except REDIS_ERRORS:
            raise ServiceUnavailable("This change cannot be applied right now; try again shortly.") from None

    async def _write(self, marks: list[Mark]) -> None:
        for i in range(0, len(marks), BATCH):
            batch = marks[i:i + BATCH]
            args: list[str | int] = [_now_ms()]
            for m in batch:
                args += [m.value, m.expires_at_ms, 1 if m.raise_only else 0]
            await self._apply(keys=[m.key for m in batch], args=args)

    async def end_sessions(self, conn: asyncpg.Connection, session_ids: Iterable[UUID]) -> None:
        """Every access token of these sessions is revoked (until the last one has expired)."""
        expires = _now_ms() + self.ttl_s * 1000
        await self.put(conn, [Mark(redis_keys.session_revoked(sid), "1", expires) for sid in session_ids])

    def stale_mark(self, key: str, mark_ms: int) -> Mark:
        # The key only has to outlive the tokens issued before the mark.
        return Mark(key, str(mark_ms), mark_ms + self.ttl_s * 1000, raise_only=True)

    async def mark_user_org(self, conn: asyncpg.Connection, user_id: UUID, organization_id: UUID,
                            mark_ms: int) -> None:
        """The user's tokens for this organization minted from a state read before ``mark_ms``
        (PostgreSQL's clock) are stale."""
        await self.put(conn, [self.stale_mark(redis_keys.user_org_stale(user_id, organization_id), mark_ms)])

    async def mark_org(self, conn: asyncpg.Connection, organization_id: UUID, mark_ms: int) -> None:
        await self.put(conn, [self.stale_mark(redis_keys.org_stale(organization_id), mark_ms)])

    async def mark_role(self, conn: asyncpg.Connection, organization_id: UUID, role_name: str,
                        mark_ms: int) -> None:
        """Tokens carrying this custom role, minted from a state read before ``mark_ms``, are stale."""
        await self.put(conn, [self.stale_mark(redis_keys.role_stale(organization_id, role_name), mark_ms)])

    # ------------------------------------------------------------------ rebuilding

    async def ready(self) -> bool:
        return bool(await self.redis.exists(redis_keys.REVOCATION_READY))

    async def rebuild(self, pool: asyncpg.Pool) -> bool:
        """Write every unexpired mark from PostgreSQL to Redis, then set ``rv:ready`` unless
        Redis was replaced meanwhile. True when this call set it."""
        await self.redis.set(redis_keys.REVOCATION_EPOCH, uuid.uuid4().hex, nx=True)
        epoch = await self.redis.get(redis_keys.REVOCATION_EPOCH)
        if epoch is None:
            return False
        await self.rewrite(pool)
        done = await self._finish(keys=[redis_keys.REVOCATION_EPOCH, redis_keys.REVOCATION_READY],
                                  args=[epoch, _now_ms()])
        return bool(done)

    async def rewrite(self, pool: asyncpg.Pool) -> int:
        """Write every unexpired persisted mark to Redis (idempotent); the number written."""
        async with pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT key, value, raise_only, (extract(epoch FROM expires_at) * 1000)::bigint AS exp "
                "FROM revocation_mark WHERE expires_at > clock_timestamp()")
        marks = [Mark(r["key"], r["value"], int(r["exp"]), r["raise_only"]) for r in rows]
        await self._write(marks)
        return len(marks)

    async def purge_expired(self, pool: asyncpg.Pool) -> int:
        async with pool.acquire() as conn:
            done = await conn.execute("DELETE FROM revocation_mark WHERE expires_at < clock_timestamp()")
        return int(done.split()[-1])


class RevocationRebuilder:
    """Watches for a Redis without ``rv:ready`` (restarted empty, or a new one) and rebuilds it.

    ``interval_s``: how often Redis is asked. After a rebuild the marks are written once more
    ``settle_s`` later: a mark whose transaction wrote to the previous Redis and committed only
    after the rebuild read PostgreSQL is then written too (idempotent)."""

    def __init__(self, revocations: Revocations, pool: asyncpg.Pool, *, interval_s: float, settle_s: float = 2.0,
                 purge_every_s: float = 600.0):
        self.revocations, self.pool = revocations, pool
        self.interval_s, self.settle_s, self.purge_every_s = interval_s, settle_s, purge_every_s
        self.rebuilds = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def check_once(self) -> bool:
        """Rebuild when needed; True when this call completed a rebuild."""
        if await self.revocations.ready():
            return False
        started = time.monotonic()
        if not await self.revocations.rebuild(self.pool):
            return False
        self.rebuilds += 1
        log.warning("revocation marks rebuilt in Redis from PostgreSQL",
                    extra={"took_ms": round((time.monotonic() - started) * 1000)})
        await asyncio.sleep(self.settle_s)
        await self.revocations.rewrite(self.pool)
        return True

    async def _run(self) -> None:
        last_purge = 0.0
        while True:
            try:
                await self.check_once()
                if time.monotonic() - last_purge > self.purge_every_s:
                    last_purge = time.monotonic()
                    await self.revocations.purge_expired(self.pool)
            except asyncio.CancelledError:
                raise
            except (*REDIS_ERRORS, asyncpg.PostgresError) as exc:
                log.warning("revocation rebuild check failed; retrying", extra={"error": type(exc).__name__})
            except Exception:
                log.exception("revocation rebuild check failed; retrying")
            await asyncio.sleep(self.interval_s)


REVOCATIONS = web.AppKey("revocations", Revocations)
REBUILDER = web.AppKey("revocation_rebuilder", RevocationRebuilder)
