"""The gateway in Kubernetes: a headless Service name whose addresses change during a rolling
update, and readiness that stays 200 while the gateway can serve anything."""
from __future__ import annotations

import asyncio
import collections
import socket

from aiohttp.test_utils import TestClient, TestServer

from gateway.app import GATEWAY, create_app
from shared import redis_keys

RESOLVE_S = 0.2
PRESTOP_S = 3 * RESOLVE_S   # the manifests' preStop sleep is likewise longer than the interval


def free_port(host: str = "127.0.0.1") -> int:
    s = socket.socket()
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Dns:
    """The headless Service: the name resolves to the addresses listed (ready pods)."""

    def __init__(self, *addresses: str):
        self.addresses = list(addresses)

    async def __call__(self, host: str, port: int) -> list[tuple[int, str]]:
        assert host == "ticket.svc.test"
        return [(socket.AF_INET, a) for a in self.addresses]


async def start_pod(app_factory, name: str, ip: str, port: int) -> TestServer:
    server = TestServer(app_factory(name), host=ip, port=port)
    await server.start_server()
    return server


async def test_rolling_update_behind_a_headless_name_loses_almost_nothing(upstream_app, settings_for, bearer,
                                                                         redis_db):
    # auth-service has rebuilt the revocation state (as make_gateway says): without rv:ready the
    # gateway refuses writes by policy, whatever the upstreams, and this test must not depend on
    # an earlier test having left it.
    await redis_db.set(redis_keys.REVOCATION_READY, b"1")
    port = free_port()
    dns = Dns("127.0.0.2", "127.0.0.3")
    pods = {ip: await start_pod(upstream_app, f"v1-{ip}", ip, port) for ip in dns.addresses}
    # A Redis reply slower than the default 0.25 s (a loaded CI machine: seen once, four timeouts
    # in this test) makes the gateway refuse writes for a while by policy (test_revocation_and_limits covers
    # that); this test is about the upstreams, so Redis gets time to answer.
    settings = settings_for(ticket_upstreams=f"http://ticket.svc.test:{port}",
                                resolve_interval_s=RESOLVE_S, upstream_eject_s=5, rate_limit_user=0,
                                rate_limit_public=0, redis_timeout_s=2.0)
    app = create_app(settings)
    app[GATEWAY].pools["ticket"].resolver = dns
    gw = TestClient(TestServer(app))
    await gw.start_server()
    statuses: collections.Counter = collections.Counter()
    served_by: collections.Counter = collections.Counter()
    stop = asyncio.Event()
    headers = bearer()

    async def client(n: int) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            if i % 2:
                resp = await gw.get(f"/v1/tickets?c={n}", headers=headers)
            else:   # writes too: a refused connect never reached a pod, so it is retried
                resp = await gw.post("/v1/tickets", json={"title": "t"}, headers=headers)
            statuses[resp.status] += 1
            if resp.status == 200:
                served_by[(await resp.json())["upstream"]] += 1
            else:
                await resp.read()

    async def terminate(ip: str) -> None:
        # Kubernetes: the pod leaves the endpoints (not ready), preStop sleeps, then SIGTERM.
        dns.addresses.remove(ip)
        await asyncio.sleep(PRESTOP_S)
        await pods.pop(ip).close()

    try:
        clients = [asyncio.create_task(client(n)) for n in range(8)]
        await asyncio.sleep(0.5)
        # maxSurge 1, maxUnavailable 0: start the new pod, list it once ready, retire an old one.
        for old, new in (("127.0.0.2", "127.0.0.4"), ("127.0.0.3", "127.0.0.5")):
            pods[new] = await start_pod(upstream_app, f"v2-{new}", new, port)
            dns.addresses.append(new)
            await asyncio.sleep(2 * RESOLVE_S)
            await terminate(old)
            await asyncio.sleep(0.3)
        # A pod that died before its endpoint was removed: listed, but refusing connections.
        dns.addresses.append("127.0.0.6")
        await asyncio.sleep(1.0)
        dns.addresses.remove("127.0.0.6")
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.gather(*clients)
        total = sum(statuses.values())
        lost = total - statuses[200]
        print(f"rolling update: {total} requests, {lost} not answered 200: {dict(statuses)}")
        assert total >= 300, statuses
        assert lost <= 0.005 * total, (statuses, served_by)
        # Every pod took traffic; at the end only the new ones are replicas.
        assert set(served_by) == {"v1-127.0.0.2", "v1-127.0.0.3", "v2-127.0.0.4", "v2-127.0.0.5"}
        pool = app[GATEWAY].pools["ticket"]
        assert sorted(r.base for r in pool.replicas) == [f"http://127.0.0.4:{port}", f"http://127.0.0.5:{port}"]
    finally:
        stop.set()
        await gw.close()
        for pod in pods.values():
            await pod.close()


async def test_ready_with_one_upstream_down(make_gateway):
    gw = await make_gateway(ticket_upstreams=f"http://127.0.0.1:{free_port()}")
    resp = await gw.get("/health/ready")
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "degraded"
    assert body["degraded"] == ["upstream_ticket"]
    assert body["checks"]["upstream_ticket"]["ok"] is False
    assert body["checks"]["upstream_auth"]["ok"] is True
    metrics = await (await gw.get("/metrics")).text()
    assert 'ready_check_ok{check="upstream_ticket",service="gateway"} 0.0' in metrics
    assert 'ready_check_ok{check="upstream_auth",service="gateway"} 1.0' in metrics
    assert 'gateway_upstream_ready_replicas{pool="ticket"} 0.0' in metrics


async def test_ready_with_redis_down_and_reads_still_served(make_gateway, bearer):
    gw = await make_gateway(redis_url=f"redis://127.0.0.1:{free_port()}/0", redis_timeout_s=0.2)
    resp = await gw.get("/health/ready")
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "degraded" and body["degraded"] == ["redis"]
    assert body["checks"]["redis"]["ok"] is False
    assert (await gw.get("/v1/tickets", headers=bearer())).status == 200
    metrics = await (await gw.get("/metrics")).text()
    assert 'ready_check_ok{check="redis",service="gateway"} 0.0' in metrics


async def test_ready_and_ok_when_everything_is_up(gateway):
    resp = await gateway.get("/health/ready")
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "ok" and "degraded" not in body
