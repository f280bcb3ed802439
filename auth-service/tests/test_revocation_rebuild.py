"""Revocation after Redis restarts with nothing kept (issue 11, item 4): a redis-server of the
test's own (never the machine's), killed and started again empty."""
import asyncio
import socket
import subprocess
import time
import uuid

import jwt
import pytest
import redis.asyncio as aioredis

from auth_service.revocation import REVOCATIONS, Mark, Revocations
from shared import redis_keys
from shared.db import DB_POOL


def client(url: str) -> aioredis.Redis:
    # The test's own client reconnects after the restarts too.
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import ConnectionError
    return aioredis.Redis.from_url(url, retry=Retry(NoBackoff(), 2), retry_on_error=[ConnectionError])


def sid_of(token: str) -> str:
    return jwt.decode(token, options={"verify_signature": False})["sid"]


class OwnRedis:
    def __init__(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc = None

    async def start(self):
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(500):
            try:
                _, w = await asyncio.open_connection("127.0.0.1", self.port)
                w.close()
                return
            except OSError:
                await asyncio.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def kill(self):
        if self.proc:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@pytest.fixture
async def own_redis():
    r = OwnRedis()
    await r.start()
    yield r
    r.kill()


async def wait_ready(r: aioredis.Redis, timeout: float = 10) -> float:
    t0 = time.monotonic()
    while not await r.exists(redis_keys.REVOCATION_READY):
        assert time.monotonic() - t0 < timeout, "revocation state not rebuilt"
        await asyncio.sleep(0.05)
    return time.monotonic() - t0


async def test_revocation_marks_survive_a_redis_restart_and_sign_in_does_not_fail(
        own_redis, make_settings, settings, start_app, signup):
    url = f"redis://127.0.0.1:{own_redis.port}/0"
    c = await start_app(make_settings(tenant_url=settings.tenant_url, redis_url=url, revocation_check_interval_s=0.2))
    r = client(url)
    try:
        await wait_ready(r)
        acct = await signup(c=c)
        resp = await c.post("/v1/auth/login", json={"email": acct.email, "password": acct.password})
        ended = (await resp.json())["tokens"]
        resp = await c.post("/v1/auth/logout", headers={"Authorization": f"Bearer {ended['access_token']}"})
        assert resp.status == 204
        # Any kind of mark persists (a = key + value + expiry): here a membership mark.
        app = c.server.app
        org, now_ms = uuid.uuid4(), int(time.time() * 1000)
        async with app[DB_POOL].acquire() as conn, conn.transaction():
            await app[REVOCATIONS].mark_user_org(conn, uuid.UUID(acct.id), org, now_ms)
        sid_key = redis_keys.session_revoked(sid_of(ended["access_token"]))
        ut_key = redis_keys.user_org_stale(acct.id, org)
        assert await r.get(sid_key) == b"1"

        for _ in range(3):
            own_redis.kill()
            await own_redis.start()
            assert await r.get(sid_key) is None  # restarted with nothing kept
            # The first sign-ins right after the restart reuse pooled connections Redis dropped:
            # they reconnect instead of answering 503.
            logins = await asyncio.gather(*(c.post("/v1/auth/login", json={"email": acct.email,
                                                                            "password": acct.password})
                                            for _ in range(3)))
            assert [x.status for x in logins] == [200, 200, 200]
            await wait_ready(r)
            assert await r.get(sid_key) == b"1"
            assert int(await r.get(ut_key)) == now_ms
            assert 0 < await r.pttl(sid_key) <= settings.revocation_ttl_s * 1000
    finally:
        await r.aclose()


async def test_two_replicas_rebuilding_at_once_agree(own_redis, admin_db, settings):
    """Two rebuilds at once (two auth replicas) both write every mark, and the ready key."""
    import asyncpg

    from shared.testing import admin_dsn
    url = f"redis://127.0.0.1:{own_redis.port}/0"
    r1, r2 = client(url), client(url)
    pool = await asyncpg.create_pool(admin_dsn(), min_size=1, max_size=2,
                                     server_settings={"search_path": "auth"})
    a, b = Revocations(r1, ttl_s=900), Revocations(r2, ttl_s=900)
    keys = [f"rv:test:{uuid.uuid4().hex}" for _ in range(1200)]
    try:
        expires = int(time.time() * 1000) + 60_000
        async with pool.acquire() as conn, conn.transaction():
            await a.put(conn, [Mark(k, str(i), expires, raise_only=True) for i, k in enumerate(keys)])
            # A lower value never replaces a higher one (raise-only), in Redis and in PostgreSQL.
            await a.put(conn, [Mark(keys[10], "1", expires, raise_only=True)])
        own_redis.kill()
        await own_redis.start()
        assert not await a.ready()
        results = await asyncio.gather(a.rebuild(pool), b.rebuild(pool))
        assert all(results)
        assert await a.ready()
        values = await r1.mget(keys)
        missing = [i for i, v in enumerate(values) if v is None]
        assert not missing, (len(missing), missing[:5], missing[-5:])
        assert [int(v) for v in values] == list(range(len(keys)))
        # A rebuild that began before Redis was replaced never declares the new one ready.
        await r1.set(redis_keys.REVOCATION_EPOCH, "an-old-epoch")
        await r1.delete(redis_keys.REVOCATION_READY)
        done = await a._finish(keys=[redis_keys.REVOCATION_EPOCH, redis_keys.REVOCATION_READY],
                               args=["the-epoch-before-the-restart", 0])
        assert done == 0 and not await a.ready()
    finally:
        async with pool.acquire() as conn:
            await conn.execute("DELETE FROM revocation_mark WHERE key = ANY($1::text[])", keys)
        await pool.close()
        await r1.aclose()
        await r2.aclose()
