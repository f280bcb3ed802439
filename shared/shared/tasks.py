"""Background tasks of a process: started in a cleanup context, stopped at its end."""
from __future__ import annotations

import asyncio
import contextlib
from typing import Any

# How long one cancellation may take before it is sent again.
_RECANCEL_S = 0.5


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` (if any) and wait until it has finished unwinding.

    A cancellation can be lost: on Python 3.11, ``asyncio.wait_for`` returns its inner result
    instead of raising when the inner future completes as the cancellation arrives, and a loop
    around it then goes on. So the task is cancelled again every half second until it is done,
    instead of being waited for forever (a relay woken by NOTIFY at the moment of shutdown once
    held a test run that long)."""
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=_RECANCEL_S)
    with contextlib.suppress(asyncio.CancelledError):
        await task
