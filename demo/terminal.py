"""The demo's customer at the counter: tap a card once the terminal shows the amount.

Why not a fixed wait: with hundreds of enrollments being charged, the terminal payment's workflow
can take far longer than usual to push the amount to the device. So the customer waits while the
payment is still running, up to a bound that grows with the size of the demo.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

from foundation.settings import SANDBOX_OID
from gravity.sandbox.control import SandboxControl, SandboxControlError

BASE_WAIT_S = 60.0
WAIT_PER_CLIENT_S = 0.5
POLL_S = 0.2
CHECK_RUNNING_EVERY_S = 2.0


def terminal_wait_bound(clients: int) -> float:
    """How long the customer may wait for the amount: a minute, plus half a second per enrolled client."""
    return BASE_WAIT_S + WAIT_PER_CLIENT_S * clients


async def tap_when_shown(
    control: SandboxControl,
    device: str,
    *,
    still_running: Callable[[], Awaitable[bool]],
    bound_s: float,
    card_number: str = "4111111111111111",
    oid: str = SANDBOX_OID,
    at: datetime | None = None,
) -> float:
    """Present a card as soon as `device` shows an amount; return the seconds waited.

    `at` dates the sale at the sandbox (the payment's simulated time). Raises RuntimeError when the
    payment ends without reaching the device, or after `bound_s`."""
    started = time.monotonic()
    next_check = started + CHECK_RUNNING_EVERY_S
    while True:
        try:
            control.present_card(oid, device, card_number=card_number, at=at)
            return time.monotonic() - started
        except SandboxControlError:
            pass  # the amount is not on the terminal yet
        now = time.monotonic()
        if now - started > bound_s:
            raise RuntimeError(f"terminal {device} never showed the amount within {bound_s:.0f} s")
        if now >= next_check:
            next_check = now + CHECK_RUNNING_EVERY_S
            if not await still_running():
                raise RuntimeError(f"the payment sent to terminal {device} ended before it showed the amount")
        await asyncio.sleep(POLL_S)
