"""End-to-end tests run against one stack started the way `make run` starts it."""
import asyncio
import re

import aiohttp
import pytest

from shared.messaging.asyncapi import EventValidator
from tests.e2e.api import PASSWORD
from tests.e2e.events import EventTap
from tests.stack import Stack


@pytest.fixture(scope="session")
async def stack():
    # INFO: every process logs one line per request, which the teardown scans for secrets.
    # API key usage is reported every second (default: a minute) so last_used_at can be seen move.
    s = Stack(ticket_replicas=2, proxied=True, extra_env={"LOG_LEVEL": "INFO", "GATEWAY_API_KEY_USAGE_FLUSH_S": "1"})
    await s.prepare()
    await asyncio.to_thread(s.start)
    yield s
    code = await asyncio.to_thread(s.stop)
    assert code == 0, s.tail()
    assert s.listening_ports() == [], "processes left behind after SIGTERM"
    # Every process's log of the whole end-to-end session: requests were logged, and no access
    # token, bearer header or password of any test ever reached a log line.
    log = s.log_path.read_text(errors="replace")
    assert '"msg": "request"' in log and '"route": "/v1/tickets"' in log
    assert not re.search(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}", log), "a JWT reached the logs"
    assert "Bearer " not in log and PASSWORD not in log


@pytest.fixture(scope="session", autouse=True)
async def tap(stack):
    """Records every event of the whole end-to-end session; at the end each one must validate
    against the gateway's /asyncapi.json (an unknown type fails too)."""
    t = await EventTap(stack.exchange).start()
    yield t
    await t.close()
    validator = EventValidator(await asyncapi_document(stack))
    assert t.messages, "no event reached the tap"
    problems = t.invalid_events(validator)
    assert not problems, "events that break /asyncapi.json:\n" + "\n".join(problems[:50])


async def asyncapi_document(stack) -> dict:
    async with aiohttp.ClientSession(base_url=stack.url) as session:
        async with session.get("/asyncapi.json") as resp:
            assert resp.status == 200
            return await resp.json()


@pytest.fixture
async def http(stack):
    async with aiohttp.ClientSession(base_url=stack.url) as session:
        yield session
