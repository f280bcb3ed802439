"""Readiness reflects PostgreSQL for real: cut the connection and it answers 503 fast."""
import time

from shared.app import create_service_app
from shared.config import BaseServiceSettings
from shared.testing import PG_HOSTPORT, TEST_DATABASE, TcpProxy, test_settings


async def test_ready_turns_503_within_a_second_when_postgres_is_unreachable(aiohttp_client):
    host, port = PG_HOSTPORT.split(":")
    proxy = await TcpProxy(host, int(port)).start()
    settings = test_settings(BaseServiceSettings, "ticket", service_name="ready-test", relay_enabled=False,
                             database_url=f"postgresql://ticket_app@127.0.0.1:{proxy.port}/{TEST_DATABASE}")
    client = await aiohttp_client(create_service_app(settings))
    try:
        resp = await client.get("/health/ready")
        body = await resp.json()
        assert resp.status == 200, body
        assert body["checks"]["postgres"]["ok"] is True

        await proxy.cut()
        started = time.monotonic()
        resp = await client.get("/health/ready")
        elapsed = time.monotonic() - started
        body = await resp.json()
        assert resp.status == 503
        assert elapsed < 1.0
        assert body["failing"] == ["postgres"]
        assert (await client.get("/health/live")).status == 200

        await proxy.restore()
        for _ in range(50):
            resp = await client.get("/health/ready")
            if resp.status == 200:
                break
        assert resp.status == 200
    finally:
        await proxy.close()
