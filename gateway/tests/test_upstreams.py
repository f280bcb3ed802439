"""Replica pools: round robin, failover with a dead replica, timeouts, readiness."""
import asyncio
import socket
import time

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.upstreams import UpstreamPool


def make_app(name):
    app = web.Application()

    async def echo(request):
        await request.read()
        return web.json_response({"upstream": name})

    async def ready(request):
        return web.json_response({"status": "ok"})
    app.router.add_get("/health/ready", ready)
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


@pytest.fixture
async def replicas():
    servers = []
    for name in ("one", "two"):
        s = TestServer(make_app(name))
        await s.start_server()
        servers.append(s)
    yield servers
    for s in servers:
        await s.close()


def url(server):
    return str(server.make_url("")).rstrip("/")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


async def test_round_robin_over_replicas(make_gateway, replicas, bearer):
    gw = await make_gateway(ticket_upstreams=",".join(url(s) for s in replicas))
    names = [(await (await gw.get("/v1/tickets", headers=bearer())).json())["upstream"] for _ in range(4)]
    assert sorted(names) == ["one", "one", "two", "two"]
    assert names[0] != names[1]


async def test_failover_when_one_replica_is_stopped(make_gateway, replicas, bearer):
    from gateway.app import GATEWAY
    gw = await make_gateway(ticket_upstreams=",".join(url(s) for s in replicas), upstream_eject_s=30)
    for _ in range(4):   # warm keep-alive connections to both
        assert (await gw.get("/v1/tickets", headers=bearer())).status == 200
    stopped = url(replicas[0])
    await replicas[0].close()   # "one" refuses connections from now on
    for _ in range(6):
        resp = await gw.get("/v1/tickets", headers=bearer())
        assert resp.status == 200
        assert (await resp.json())["upstream"] == "two"
    pool = gw.app[GATEWAY].pools["ticket"]
    dead = [r for r in pool.replicas if not r.available(time.monotonic())]
    assert [r.base for r in dead] == [stopped]
    ready = await (await gw.get("/health/ready")).json()
    assert ready["checks"]["upstream_ticket"]["ready_replicas"] == 1


async def test_a_refused_connect_is_retried_for_any_method(make_gateway, replicas, bearer):
    # No connection was made, so the request cannot have reached the dead replica: even a POST
    # goes to the next one (a pod gone between two re-resolutions must cost nothing).
    dead = f"http://127.0.0.1:{free_port()}"
    gw = await make_gateway(ticket_upstreams=f"{dead},{url(replicas[1])}", upstream_eject_s=30)
    resp = await gw.post("/v1/tickets", json={"title": "t"}, headers=bearer())
    assert resp.status == 200
    assert (await resp.json())["upstream"] == "two"


async def test_non_idempotent_requests_are_not_retried_once_sent(make_gateway, replicas, bearer):
    # A replica that accepts the connection and then drops it may have acted on the request.
    async def drop(reader, writer):
        await reader.read(1)
        writer.transport.abort()
    server = await asyncio.start_server(drop, "127.0.0.1", 0)
    dropper = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        gw = await make_gateway(ticket_upstreams=f"{dropper},{url(replicas[1])}", upstream_eject_s=30)
        resp = await gw.post("/v1/tickets", json={"title": "t"}, headers=bearer())
        assert resp.status == 502                  # the dropping replica was picked; no second try
        assert resp.headers["Content-Type"].startswith("application/problem+json")
        resp = await gw.get("/v1/tickets", headers=bearer())
        assert resp.status == 200                  # a GET without a body is retried
    finally:
        server.close()


async def test_put_is_retried_on_another_replica(make_gateway, replicas, bearer):
    dead = f"http://127.0.0.1:{free_port()}"
    gw = await make_gateway(ticket_upstreams=f"{dead},{url(replicas[1])}")
    resp = await gw.put("/v1/tickets/x", json={"title": "t"}, headers=bearer())
    assert resp.status == 200
    assert (await resp.json())["upstream"] == "two"


async def test_ejected_replica_comes_back_after_the_pause(make_gateway, replicas, bearer):
    port = free_port()
    gw = await make_gateway(ticket_upstreams=f"http://127.0.0.1:{port},{url(replicas[1])}", upstream_eject_s=0.3)
    assert (await gw.get("/v1/tickets", headers=bearer())).status == 200   # failed over, "dead" ejected
    revived = TestServer(make_app("revived"), port=port)
    await revived.start_server()
    try:
        await asyncio.sleep(0.35)
        names = {(await (await gw.get("/v1/tickets", headers=bearer())).json())["upstream"] for _ in range(4)}
        assert names == {"revived", "two"}
    finally:
        await revived.close()


async def test_no_replica_available_is_503_then_502(make_gateway, bearer):
    gw = await make_gateway(ticket_upstreams=f"http://127.0.0.1:{free_port()}", upstream_eject_s=30)
    resp = await gw.get("/v1/tickets", headers=bearer())
    assert resp.status == 502
    resp = await gw.get("/v1/tickets", headers=bearer())
    assert resp.status == 503
    assert resp.headers["Retry-After"]
    body = await resp.json()
    assert body["status"] == 503 and "ticket" in body["detail"]
    ready = await gw.get("/health/ready")
    assert ready.status == 200                     # degraded, not unready: the other pools serve
    assert "upstream_ticket" in (await ready.json())["degraded"]


async def test_slow_upstream_is_504_in_the_configured_time(make_gateway, bearer):
    gw = await make_gateway(total_timeout_s=0.3)
    started = time.monotonic()
    resp = await gw.get("/v1/tickets/slow?s=3", headers=bearer())
    elapsed = time.monotonic() - started
    assert resp.status == 504
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    assert 0.25 <= elapsed < 1.0


async def test_ready_when_every_pool_has_a_ready_replica(gateway):
    resp = await gateway.get("/health/ready")
    assert resp.status == 200, await resp.text()
    checks = (await resp.json())["checks"]
    assert {"redis", "upstream_auth", "upstream_tenant", "upstream_ticket"} <= set(checks)


async def test_host_names_resolve_to_one_replica_per_address():
    pool = UpstreamPool("ticket", ["http://localhost:8999/"], eject_s=1)
    await pool.resolve()
    bases = {r.base for r in pool.replicas}
    assert "http://127.0.0.1:8999" in bases
    assert all(b.endswith(":8999") for b in bases)
    ip_pool = UpstreamPool("auth", ["http://127.0.0.1:1", "http://127.0.0.1:2"])
    assert not ip_pool.needs_resolution()
    assert [r.base for r in ip_pool.candidates()] == ["http://127.0.0.1:1", "http://127.0.0.1:2"]
    assert [r.base for r in ip_pool.candidates()] == ["http://127.0.0.1:2", "http://127.0.0.1:1"]
