"""Group commit for ticket creations (issue 16).

Every creation of an organization takes its counter row until it commits (gapless numbers), so
concurrent creations in one organization used to queue in PostgreSQL, each holding the row
through its own statement, its own commit and its own wait for the WAL flush. Here they queue in
the service instead: while a batch of an organization is being written, the creations that
arrive for it wait, and go together in the next batch (one statement, one commit, one hold of
the row; ``repository.create_tickets``). A creation that finds its organization idle goes at
once, alone: no timer, no wait that load does not cause.

Each caller still gets its own answer once its batch committed, never before. A batch the server
refused for one of its items (nothing of it was written) is tried again one item at a time when
``retry_alone`` says so, so that one bad creation does not fail the ones beside it; the retries
reuse the items' ids, so nothing could be written twice even then. Any other failure (a lost
connection: the outcome is unknown) goes to every caller of the batch, as it would have gone to
each of them alone.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from prometheus_client import Histogram

Item = TypeVar("Item")
Result = TypeVar("Result")

BATCH_SIZE = Histogram("ticket_create_batch_size", "Creations written together in one statement and one commit",
                       buckets=(1, 2, 4, 8, 16, 32, 64, 128))


class Batches(Generic[Item, Result]):
    """Creations grouped by key (the organization): at most one batch per key in flight in this
    process, at most ``max_size`` items in a batch, in arrival order."""

    def __init__(self, write: Callable[[Hashable, list[Item]], Awaitable[list[Result]]], *, max_size: int,
                 retry_alone: Callable[[BaseException], bool]):
        self._write = write
        self.max_size = max(1, max_size)
        self._retry_alone = retry_alone
        self._waiting: dict[Hashable, list[tuple[Item, asyncio.Future[Result]]]] = {}
        self._writers: dict[Hashable, asyncio.Task[None]] = {}

    async def submit(self, key: Hashable, item: Item) -> Result:
        """Write ``item`` with whatever else of ``key`` is waiting; its result once committed. A
        caller cancelled while its item still waits takes it out of the next batch."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append((item, future))
        if key not in self._writers:
            self._writers[key] = asyncio.create_task(self._drain(key), name=f"create-batches-{key}")
        return await future

    async def _drain(self, key: Hashable) -> None:
        try:
            # No await between finding nothing waiting and leaving: a submit() either lands in a
            # batch of this loop or finds no writer and starts one.
            while waiting := self._waiting.pop(key, None):
                batch = [(item, future) for item, future in waiting if not future.cancelled()]
                if len(batch) > self.max_size:
                    self._waiting[key] = batch[self.max_size:]
                    batch = batch[:self.max_size]
                if batch:
                    await self._run(key, batch)
        except asyncio.CancelledError:
            # The process is stopping: nobody will write what still waits.
            for _, future in self._waiting.pop(key, []):
                future.cancel()
            raise
        finally:
            del self._writers[key]

    async def _run(self, key: Hashable, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        BATCH_SIZE.observe(len(batch))
        try:
            results = await self._write(key, [item for item, _ in batch])
            if len(results) != len(batch):  # every caller hears of it rather than waiting for ever
                raise RuntimeError(f"{len(results)} results for a batch of {len(batch)}")
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:
            if len(batch) > 1 and self._retry_alone(exc):
                for one in batch:
                    await self._run(key, [one])
                return
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
