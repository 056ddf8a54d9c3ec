"""The sandbox dates a transaction by the caller's time when the client is built to send it (the
demo's simulated year), and by its own clock otherwise: a real Gravity never hears of it."""

from __future__ import annotations

from datetime import UTC, datetime

import pendulum

from gravity.client import CALLER_TIME, GravityClient
from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from tests.gravity.conftest import DEVICES, OID, TOKEN, new_id, save_card

SIMULATED = datetime(2027, 3, 10, 15, 0, tzinfo=UTC)
DEVICE = DEVICES[0]


def _dated(control: SandboxControl, external_id: str) -> str:
    return next(str(row["created_at"]) for row in control.transactions() if row["external_transaction_id"] == external_id)


async def test_a_told_client_dates_its_sales_in_the_callers_time(gravity_sandbox: SandboxServer, control: SandboxControl, client: GravityClient) -> None:
    card = await save_card(client)
    told, untold = new_id(), new_id()
    token = CALLER_TIME.set(SIMULATED)
    try:
        async with GravityClient(gravity_sandbox.base_url, OID, TOKEN, tell_sandbox_time=True) as telling:
            await telling.charge_saved_card(card_ref=card, amount_cents=4_500, external_id=told)
        await client.charge_saved_card(card_ref=card, amount_cents=4_500, external_id=untold)  # not built to tell
    finally:
        CALLER_TIME.reset(token)

    assert pendulum.parse(_dated(control, told)) == SIMULATED
    assert pendulum.parse(_dated(control, untold)).date() == pendulum.now("UTC").date()  # type: ignore[union-attr]


async def test_a_tap_told_the_time_dates_the_terminal_sale_then(client: GravityClient, control: SandboxControl) -> None:
    """The demo's counter visit is on a day of its simulated year: the customer's tap (a control call)
    says that time, so the terminal sale is dated then; an untold tap is dated today."""
    told, untold = new_id(), new_id()
    await client.start_terminal(device_name=DEVICE, external_id=told, amount_cents=8_500)
    control.present_card(OID, DEVICE, at=SIMULATED)
    await client.start_terminal(device_name=DEVICE, external_id=untold, amount_cents=8_500)
    control.present_card(OID, DEVICE)

    assert pendulum.parse(_dated(control, told)) == SIMULATED
    assert pendulum.parse(_dated(control, untold)).date() == pendulum.now("UTC").date()  # type: ignore[union-attr]
