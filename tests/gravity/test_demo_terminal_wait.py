"""The demo's customer waits for the terminal on progress (the payment still running), with a bound
that grows with the demo's size, instead of a fixed 20 s that 500 clients outran."""

from __future__ import annotations

import asyncio
import time

import pytest

from demo.terminal import tap_when_shown, terminal_wait_bound
from gravity.client import GravityClient
from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from tests.gravity.conftest import OID, TOKEN, new_id

DEVICE = "front-desk-1"


async def running() -> bool:
    return True


async def ended() -> bool:
    return False


def test_the_bound_grows_with_the_clients() -> None:
    assert terminal_wait_bound(500) > terminal_wait_bound(50) > 20
    assert terminal_wait_bound(500) >= 300


async def test_taps_once_the_amount_shows_and_says_why_it_gave_up() -> None:
    with SandboxServer({OID: TOKEN}, log_level="critical") as server, SandboxControl(server.root_url) as control:
        async with GravityClient(server.base_url, OID, TOKEN) as gravity:

            async def push_later() -> None:
                await asyncio.sleep(1.5)
                await gravity.start_terminal(device_name=DEVICE, external_id=new_id(), amount_cents=4_500)

            pusher = asyncio.create_task(push_later())
            waited = await tap_when_shown(control, DEVICE, still_running=running, bound_s=30, oid=OID)
            await pusher
        assert waited >= 1.4
        assert [t["amount"] for t in control.transactions(OID)] == ["45.00"]

        started = time.monotonic()
        with pytest.raises(RuntimeError, match="ended before"):
            await tap_when_shown(control, DEVICE, still_running=ended, bound_s=30, oid=OID)
        assert time.monotonic() - started < 5
        with pytest.raises(RuntimeError, match="within 1 s"):
            await tap_when_shown(control, DEVICE, still_running=running, bound_s=1, oid=OID)
