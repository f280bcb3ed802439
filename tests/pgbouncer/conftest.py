"""The journeys again, with every service's pool going through PgBouncer in transaction
pooling mode (a PgBouncer of the stack's own, from the distribution's package)."""
import asyncio

import aiohttp
import pytest

from shared.pgbouncer import find_binary
from tests.e2e.events import EventTap
from tests.stack import Stack


@pytest.fixture(scope="package")
async def stack():
    if find_binary() is None:
        pytest.fail("pgbouncer is not installed: run `bash deploy/ensure-servers.sh` (make test does)")
    # 18480: other checkouts' stacks sit at 18080 + multiples of TEST_PORT_OFFSET's 500 steps
    # (and +100.. for replicas); +400 stays clear of all of them.
    s = Stack(database="e2e_pgbouncer", port_base=18480, redis_db=7, pgbouncer=True,
              extra_env={"LOG_LEVEL": "INFO"})
    await s.prepare()
    await asyncio.to_thread(s.start)
    yield s
    code = await asyncio.to_thread(s.stop)
    assert code == 0, s.tail()


@pytest.fixture(scope="package")
async def tap(stack):
    t = await EventTap(stack.exchange).start()
    yield t
    await t.close()


@pytest.fixture
async def http(stack):
    async with aiohttp.ClientSession(base_url=stack.url) as session:
        yield session
