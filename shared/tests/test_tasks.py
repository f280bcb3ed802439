"""shared.tasks.cancel_and_wait stops a background task even when a cancellation is lost."""
import asyncio

import pytest

from shared.tasks import cancel_and_wait


async def test_a_task_that_loses_a_cancellation_is_still_stopped():
    """A loop that swallows one cancellation (as asyncio.wait_for can on Python 3.11 when the
    awaited event is set as the cancellation arrives) goes on; cancel_and_wait cancels it again
    until it is done instead of waiting for it forever."""
    swallowed = 0

    async def loop():
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed += 1   # lost: the loop goes on
    task = asyncio.create_task(loop())
    await asyncio.sleep(0)
    loop_time = asyncio.get_running_loop().time
    started = loop_time()
    await asyncio.wait_for(cancel_and_wait(task), timeout=5)
    assert task.cancelled() and swallowed == 1
    assert loop_time() - started < 2, "waited on the lost cancellation until something else cancelled the wait"


async def test_a_task_that_failed_raises_its_error_and_none_is_nothing():
    async def fail():
        raise LookupError("the task failed")
    task = asyncio.create_task(fail())
    await asyncio.sleep(0)
    with pytest.raises(LookupError):
        await cancel_and_wait(task)
    await cancel_and_wait(None)
