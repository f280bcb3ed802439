"""The gateway's pipelined Redis client, against the real Redis (DB 2)."""
import asyncio
import uuid

import pytest

from gateway.resp import RedisPipe, RedisReplyError, RedisUnavailable, encode_command, parse_reply
from shared.testing import REDIS_HOST, REDIS_PORT, TcpProxy, redis_url

REDIS_URL = redis_url(2)


def test_parse_reply_handles_every_split():
    wire = b"*3\r\n:1\r\n$5\r\nhello\r\n*2\r\n$-1\r\n+OK\r\n" + b"-ERR boom\r\n"
    for cut in range(1, len(wire)):
        buf = bytearray(wire[:cut])
        try:
            value, pos = parse_reply(buf, 0)
        except Exception as exc:
            assert type(exc).__name__ == "_Incomplete", cut
            continue
        assert value == [1, b"hello", [None, b"OK"]] and cut >= pos
    value, pos = parse_reply(wire, 0)
    err, _ = parse_reply(wire, pos)
    assert isinstance(err, RedisReplyError) and "boom" in str(err)
    assert encode_command(("SET", "k", 5, b"\x00")) == b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n5\r\n$1\r\n\x00\r\n"


async def test_pipelined_calls_get_their_own_answers(redis_db):
    pipe = RedisPipe(REDIS_URL)
    prefix = f"t:{uuid.uuid4().hex}"
    try:
        await asyncio.gather(*(pipe.call("SET", f"{prefix}:{i}", i, "EX", 30) for i in range(200)))
        values = await asyncio.gather(*(pipe.call("GET", f"{prefix}:{i}") for i in range(200)))
        assert values == [str(i).encode() for i in range(200)]
        assert await redis_db.get(f"{prefix}:7") == b"7"      # the URL's database was selected
        with pytest.raises(RedisReplyError):
            await pipe.call("INCR", f"{prefix}:nope", "extra-arg")
        assert await pipe.call("GET", f"{prefix}:1") == b"1"   # the connection survives an error reply
    finally:
        await redis_db.delete(*[f"{prefix}:{i}" for i in range(200)])
        await pipe.close()


async def test_unknown_script_is_loaded_on_first_use():
    pipe = RedisPipe(REDIS_URL)
    try:
        sha = pipe.script(f"-- {uuid.uuid4().hex}\nreturn {{tonumber(ARGV[1]) + 1, KEYS[1]}}")
        assert await pipe.evalsha(sha, ["k"], [41]) == [42, b"k"]
        assert await pipe.evalsha(sha, ["j"], [1]) == [2, b"j"]
    finally:
        await pipe.close()


async def test_lost_connection_fails_fast_then_reconnects():
    proxy = await TcpProxy(REDIS_HOST, REDIS_PORT).start()
    pipe = RedisPipe(f"redis://127.0.0.1:{proxy.port}/2", timeout_s=0.3)
    try:
        await pipe.ping()
        await proxy.cut()
        with pytest.raises(RedisUnavailable):
            await pipe.ping()
        await proxy.restore()
        await pipe.ping()
    finally:
        await pipe.close()
        await proxy.close()


async def test_a_redis_that_never_answers_times_out():
    async def silent(reader, writer):
        await reader.read(1 << 16)
        await asyncio.sleep(5)
    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pipe = RedisPipe(f"redis://127.0.0.1:{port}/0", timeout_s=0.2)
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        results = await asyncio.gather(pipe.ping(), pipe.ping(), return_exceptions=True)
        assert all(isinstance(r, RedisUnavailable) for r in results)
        assert loop.time() - started < 1.0
    finally:
        await pipe.close()
        server.close()


async def test_gateway_recovers_when_redis_comes_back(make_gateway, bearer):
    proxy = await TcpProxy(REDIS_HOST, REDIS_PORT).start()
    try:
        gw = await make_gateway(redis_url=f"redis://127.0.0.1:{proxy.port}/2", redis_retry_s=0.2)
        headers = bearer()
        assert (await gw.get("/v1/tickets", headers=headers)).status == 200
        assert (await gw.post("/v1/tickets", json={}, headers=headers)).status == 200
        await proxy.cut()
        assert (await gw.get("/v1/tickets", headers=headers)).status == 200
        assert (await gw.post("/v1/tickets", json={}, headers=headers)).status == 503
        await proxy.restore()
        await asyncio.sleep(0.25)
        resp = await gw.post("/v1/tickets", json={}, headers=headers)
        assert resp.status == 200
        assert resp.headers["RateLimit-Limit"] == "1000"
    finally:
        await proxy.close()
