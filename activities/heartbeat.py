"""Heartbeats while an activity waits on the gateway, so a worker that dies mid-charge is noticed
in seconds (the heartbeat timeout) instead of at the end of the start-to-close timeout, and the
retry - which looks the charge up before anything else - runs on a live worker."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from temporalio import activity

INTERVAL_SECONDS = 2.0


@contextlib.asynccontextmanager
async def heartbeating() -> AsyncIterator[None]:
    """Heartbeat every few seconds for as long as the block runs (no-op outside an activity, and in
    a local activity: the workflow task it runs under is what notices a dead worker)."""
    if not activity.in_activity() or activity.info().is_local:
        yield
        return

    async def beat() -> None:
        # The first beat after one interval, not at once: a charge answered within it (nearly all)
        # costs no heartbeat call, and the heartbeat timeout is several intervals long.
        while True:
            await asyncio.sleep(INTERVAL_SECONDS)
            activity.heartbeat()

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
