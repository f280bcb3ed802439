"""Creations in batches (tickets.batching, migration ticket_create_many): the creations of an
organization that arrive while its previous batch is written go together in one statement. Each
still gets its own answer, its own gapless number in arrival order and its own event, across
replicas too; a creation the server refuses fails alone; a caller that gives up while waiting
writes nothing."""
import asyncio
import contextlib
import json
import time
import uuid

import pytest
from aiohttp.test_utils import TestClient, TestServer

from shared.auth import Principal
from shared.context import RequestContext
from shared.db import tenant_transaction
from shared.permissions import TICKETS_CREATE
from ticket_service.app import create_app
from ticket_service.keys import TICKET_SERVICE
from ticket_service.tickets.batching import BATCH_SIZE
from ticket_service.tickets.schemas import TicketCreate

ROUNDS, PER_ROUND = 5, 48


def _batches() -> tuple[float, float]:
    """(observations, creations) of the batch-size histogram so far."""
    count = total = 0.0
    for metric in BATCH_SIZE.collect():
        for sample in metric.samples:
            if sample.name.endswith("_count"):
                count = sample.value
            elif sample.name.endswith("_sum"):
                total = sample.value
    return count, total


async def _outbox_numbers(pool, ids: list[str]) -> dict[str, int]:
    """The number each ticket's ticket.created event carries, by ticket id."""
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT payload::text FROM outbox WHERE routing_key = 'ticket.created' "
                                "AND payload->'subject'->>'id' = ANY($1::text[])", ids)
    events = [json.loads(r[0]) for r in rows]
    return {e["subject"]["id"]: e["data"]["number"] for e in events}


@pytest.fixture
async def second_replica(settings):
    """Another ticket-service replica on the same database: its own pool and its own batches."""
    async with TestClient(TestServer(create_app(settings))) as c:
        yield c


async def test_racing_creations_on_two_replicas_get_gapless_numbers_in_batches(api, org, pool, second_replica):
    users = [await org.user("member") for _ in range(4)]
    agent = await org.user("agent")  # sees every ticket of the organization
    replicas = [api.client, second_replica]
    before = _batches()
    last = 0
    for _ in range(ROUNDS):
        async def create(i: int) -> dict:
            title = f"race {uuid.uuid4().hex[:8]}"
            resp = await replicas[i % 2].post("/v1/tickets", json={"title": title, "tags": [f"t{i}"]},
                                              headers=users[i % 4].auth)
            assert resp.status == 201, await resp.text()
            ticket = await resp.json()
            assert (ticket["title"], ticket["tags"]) == (title, [f"t{i}"])  # each caller gets its own ticket
            return ticket
        made = await asyncio.gather(*(create(i) for i in range(PER_ROUND)))
        # The numbers of the round follow the last round's without a gap or a repeat.
        assert sorted(t["number"] for t in made) == list(range(last + 1, last + PER_ROUND + 1))
        last += PER_ROUND
        # What each caller was told is what was stored, and what its event says.
        stored = {t["id"]: t for t in (await api.list(agent, limit="100"))["items"]}
        assert all(stored[t["id"]] == t for t in made)
        assert await _outbox_numbers(pool, [t["id"] for t in made]) == {t["id"]: t["number"] for t in made}
    count, total = (a - b for a, b in zip(_batches(), before, strict=True))
    assert total == ROUNDS * PER_ROUND
    # Batching happened: fewer statements than creations.
    assert count < total, (count, total)


async def test_numbers_follow_arrival_order_within_a_batch(api, org, pool):
    """Creations queued behind a held counter go in one batch, numbered in the order they came,
    each with its own created_at in that order."""
    user = await org.user("member")
    await api.create_ticket(user)  # the organization's counter row exists
    async with tenant_transaction(pool, org.id) as conn:
        await conn.execute("SELECT 1 FROM ticket_counter FOR UPDATE")
        first = asyncio.create_task(api.client.post("/v1/tickets", json={"title": "first"}, headers=user.auth))
        await _until_waiting(pool, conn.get_server_pid())
        rest = []
        for i in range(5):
            rest.append(asyncio.create_task(api.client.post("/v1/tickets", json={"title": f"next {i}"},
                                                            headers=user.auth)))
            await asyncio.sleep(0.01)  # they arrive in this order
        await asyncio.sleep(0.05)
    made = [await (await task).json() for task in [first, *rest]]
    assert [t["number"] for t in made] == list(range(2, 8))
    assert [t["created_at"] for t in made[1:]] == sorted(t["created_at"] for t in made[1:])


# The sessions the holder of the counter row (a backend pid) blocks: the test's own creations,
# whatever else runs on the server.
_BLOCKED = "FROM pg_stat_activity WHERE $1::int = ANY(pg_blocking_pids(pid))"


async def _until_waiting(pool, holder: int, timeout: float = 5.0) -> None:
    """Until a creation waits on the counter row that ``holder`` holds."""
    deadline = time.monotonic() + timeout
    async with pool.acquire() as conn:
        while time.monotonic() < deadline:
            if await conn.fetchval(f"SELECT count(*) {_BLOCKED}", holder):
                return
            await asyncio.sleep(0.01)
    raise AssertionError("no creation waited on the counter")


class Creations:
    """Creations through the service itself (the way past the API's validation), by one member,
    and the organization's counter row held by another transaction while ``held()`` lasts."""

    def __init__(self, api, org, pool, user):
        self.api, self.org, self.pool, self.user = api, org, pool, user
        self.service = api.client.server.app[TICKET_SERVICE]
        self.principal = Principal(user_id=user.id, session_id=uuid.uuid4(), tenant_id=org.id, role="member",
                                   jti="t", iat=0, exp=2 ** 40, permissions=frozenset({TICKETS_CREATE}))
        self.ctx = RequestContext(request_id="batch-test", ip="127.0.0.1")
        self.holder = 0  # the backend holding the counter row while held() lasts

    def start(self, body: TicketCreate) -> asyncio.Task:
        return asyncio.create_task(self.service.create(self.principal, self.ctx, body))

    @contextlib.asynccontextmanager
    async def held(self):
        """The counter row held; a first creation ("first") waiting on it, alone in its batch,
        so the creations started meanwhile go together in the next one once the row is free."""
        async with tenant_transaction(self.pool, self.org.id) as conn:
            await conn.execute("SELECT 1 FROM ticket_counter FOR UPDATE")
            self.holder = conn.get_server_pid()
            first = self.start(TicketCreate(title="first"))
            await _until_waiting(self.pool, self.holder)
            yield first
            await asyncio.sleep(0.05)

    async def numbers_and_titles(self) -> list[tuple[int, str]]:
        return sorted((t["number"], t["title"]) for t in (await self.api.list(self.user, limit="100"))["items"])


@pytest.fixture
async def creations(api, org, pool) -> Creations:
    user = await org.user("member")
    await api.create_ticket(user, title="the first ticket")  # number 1: the counter row exists
    return Creations(api, org, pool, user)


async def test_a_creation_the_server_refuses_fails_alone(creations):
    """A batch PostgreSQL refuses is written again one creation at a time: the refused one fails,
    the others are created, and the numbers stay gapless."""
    # A title the API would refuse (422) and the table's check refuses: it reaches the database
    # only by calling the service directly.
    bad = TicketCreate.model_construct(title="x" * 201, description="", priority="normal", tags=[],
                                       assignee_id=None)
    async with creations.held() as first:
        queued = [creations.start(body) for body in (TicketCreate(title="good 1"), bad, TicketCreate(title="good 2"))]
    results = await asyncio.gather(first, *queued, return_exceptions=True)
    assert type(results[2]).__name__ == "CheckViolationError"
    good = [json.loads(r.body) for r in (results[0], results[1], results[3])]
    assert [(t["title"], t["number"]) for t in good] == [("first", 2), ("good 1", 3), ("good 2", 4)]
    assert [number for number, _ in await creations.numbers_and_titles()] == [1, 2, 3, 4]


async def test_a_creation_given_up_while_waiting_is_not_written(creations):
    async with creations.held() as first:
        given_up = creations.start(TicketCreate(title="given up"))
        kept = creations.start(TicketCreate(title="kept"))
        await asyncio.sleep(0.01)
        given_up.cancel()
    assert (await first).status == 201 and (await kept).status == 201
    with pytest.raises(asyncio.CancelledError):
        await given_up
    assert (await creations.numbers_and_titles())[1:] == [(2, "first"), (3, "kept")]


async def _terminate_waiting(pool, holder: int) -> None:
    """Shut down (as an administrator would) the session of the creation waiting on the counter
    row that ``holder`` holds."""
    await _until_waiting(pool, holder)
    async with pool.acquire() as conn:
        assert await conn.fetchval(f"SELECT bool_and(pg_terminate_backend(pid)) {_BLOCKED}", holder)


async def test_a_batch_whose_session_is_shut_down_fails_for_all_its_callers(creations, pool):
    """An error about the session, not about a creation (here the server shutting it down, which
    can come after a commit), is not tried again one by one: every caller of the batch hears it,
    and decides. Nothing of the batch was written, and the numbers stay gapless."""
    async with creations.held() as first:
        batch = [creations.start(TicketCreate(title=f"batch {i}")) for i in range(3)]
        await asyncio.sleep(0.05)
        await _terminate_waiting(pool, creations.holder)  # the first, alone
        await _terminate_waiting(pool, creations.holder)  # then the three, together
    results = await asyncio.gather(first, *batch, return_exceptions=True)
    assert [type(r).__name__ for r in results] == ["ConnectionDoesNotExistError"] * 4, results
    after = await creations.start(TicketCreate(title="after"))
    assert json.loads(after.body)["number"] == 2
    assert (await creations.numbers_and_titles())[1:] == [(2, "after")]
