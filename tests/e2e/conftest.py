"""End-to-end tests run against one stack started the way `make run` starts it."""
import asyncio
import uuid

import aiohttp
import pytest

from tests.stack import Stack


@pytest.fixture(scope="session")
async def stack():
    s = Stack(ticket_replicas=2)
    await s.prepare()
    await asyncio.to_thread(s.start)
    yield s
    code = await asyncio.to_thread(s.stop)
    assert code == 0, s.tail()
    assert s.pids_on_ports() == [], "processes left behind after SIGTERM"


@pytest.fixture
async def http(stack):
    async with aiohttp.ClientSession(base_url=stack.url) as session:
        yield session


def unique_email(tag: str = "user") -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}@e2e.example"
