"""The floor of a GET through the gateway: the same hops built bare from the same libraries.

A bare gateway (aiohttp) verifies an RS256 JWT with pyjwt, runs one Redis INCR+EXPIRE pipeline
(redis asyncio) and forwards over a keep-alive aiohttp session to a bare service (aiohttp) that
runs one asyncpg primary-key select and answers the row as JSON. No request ids, no logs, no
metrics, no row-level security, no validation: what our stack does beyond this is its overhead.

`deploy/bench/load.py` runs it beside the real stack and prints the ratio; alone:

    python deploy/bench/bare_chain.py --dsn postgresql://postgres@127.0.0.1:5432/saas_bench_load
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

SERVICE = '''
import json, os
import asyncpg
from aiohttp import web

async def pool_ctx(app):
    app["pool"] = await asyncpg.create_pool(os.environ["BARE_DSN"], min_size=4, max_size=10)
    yield
    await app["pool"].close()

async def get_ticket(request):
    row = await request.app["pool"].fetchrow(
        "SELECT id, number, title, description, status, priority, tags, requester_id, assignee_id, "
        "created_at, updated_at, version FROM ticket.ticket WHERE org_id = $1 AND id = $2",
        request.match_info["org"], request.match_info["id"])
    if row is None:
        return web.json_response({"detail": "not found"}, status=404)
    return web.Response(text=json.dumps(dict(row), default=str), content_type="application/json")

async def app():
    a = web.Application()
    a.cleanup_ctx.append(pool_ctx)
    a.router.add_get("/t/{org}/{id}", get_ticket)
    return a
'''

GATEWAY = '''
import os
import aiohttp, jwt
import redis.asyncio as aioredis
from aiohttp import web

PUBLIC_KEY = open(os.environ["BARE_PUBLIC_KEY"]).read()

async def ctx(app):
    app["session"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100, keepalive_timeout=30))
    app["redis"] = aioredis.Redis.from_url(os.environ["BARE_REDIS_URL"])
    yield
    await app["session"].close()
    await app["redis"].aclose()

async def forward(request):
    token = request.headers.get("Authorization", "").partition(" ")[2]
    try:
        claims = jwt.decode(token, PUBLIC_KEY, algorithms=["RS256"], audience="bare")
    except jwt.PyJWTError:
        return web.json_response({"detail": "unauthorized"}, status=401)
    key = "bare:rl:" + claims["sub"]
    async with request.app["redis"].pipeline(transaction=False) as pipe:
        pipe.incr(key)
        pipe.expire(key, 60)
        await pipe.execute()
    async with request.app["session"].get(os.environ["BARE_UPSTREAM"] + request.path) as up:
        body = await up.read()
        return web.Response(body=body, status=up.status, content_type=up.content_type)

async def app():
    a = web.Application()
    a.cleanup_ctx.append(ctx)
    a.router.add_get("/t/{org}/{id}", forward)
    return a
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"bare chain: nothing listens on {port}")


def rs256_pair() -> tuple[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


@contextmanager
def bare_chain(dsn: str, redis_url: str = "redis://127.0.0.1:6379/5"):
    """Start the bare service and gateway (one gunicorn uvloop worker each, like the stack's
    processes); yields (base URL, a valid token). Stops both on exit."""
    import jwt
    d = tempfile.mkdtemp(prefix="bare-chain-")
    Path(d, "bare_service.py").write_text(SERVICE)
    Path(d, "bare_gateway.py").write_text(GATEWAY)
    private, public = rs256_pair()
    Path(d, "public.pem").write_text(public)
    service_port, gateway_port = free_port(), free_port()
    env = {**os.environ, "BARE_DSN": dsn, "BARE_REDIS_URL": redis_url, "BARE_PUBLIC_KEY": str(Path(d, "public.pem")),
           "BARE_UPSTREAM": f"http://127.0.0.1:{service_port}"}
    procs = []
    try:
        for module, port in (("bare_service", service_port), ("bare_gateway", gateway_port)):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "gunicorn", f"{module}:app", "-k", "aiohttp.GunicornUVLoopWebWorker", "-w", "1",
                 "-b", f"127.0.0.1:{port}"], cwd=d, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            wait_port(port)
        token = jwt.encode({"sub": "bench-user", "aud": "bare", "exp": int(time.time()) + 3600}, private,
                           algorithm="RS256")
        yield f"http://127.0.0.1:{gateway_port}", token, [p.pid for p in procs]
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--dsn", required=True)
    p.add_argument("--seconds", type=int, default=10)
    args = p.parse_args()
    import asyncio
    ids = asyncio.run(_some_ids(args.dsn))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from load import lua_request, wrk  # noqa: E402
    with bare_chain(args.dsn) as (url, token, _):
        print(wrk(url + "/", lua=lua_request("GET", [f"/t/{i}" for i in ids], token), seconds=args.seconds))
    return 0


async def _some_ids(dsn: str) -> list[str]:
    import asyncpg
    conn = await asyncpg.connect(dsn)
    try:
        return [f"{r[0]}/{r[1]}" for r in await conn.fetch("SELECT org_id, id FROM ticket.ticket LIMIT 200")]
    finally:
        await conn.close()


if __name__ == "__main__":
    raise SystemExit(main())
