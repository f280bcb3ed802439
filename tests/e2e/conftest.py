"""End-to-end tests run against one stack started the way `make run` starts it."""
import asyncio

import aiohttp
import pytest

from tests.e2e.events import EventTap
from tests.stack import Stack


@pytest.fixture(scope="session")
async def stack():
    s = Stack(ticket_replicas=2, proxied=True)
    await s.prepare()
    await asyncio.to_thread(s.start)
    yield s
    code = await asyncio.to_thread(s.stop)
    assert code == 0, s.tail()
    assert s.pids_on_ports() == [], "processes left behind after SIGTERM"


@pytest.fixture(scope="session")
async def tap(stack):
    t = await EventTap(stack.exchange).start()
    yield t
    await t.close()


@pytest.fixture
async def http(stack):
    async with aiohttp.ClientSession(base_url=stack.url) as session:
        yield session
