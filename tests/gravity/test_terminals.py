"""Contract: card-present terminal sessions through every end state, via the [ours] device adapter."""

from __future__ import annotations

import pytest

from gravity.client import GravityClient
from gravity.errors import DeviceBusy, ExternalIdReused, NotFound
from gravity.results import DeclineClass, DeclineReason, Device, Outcome, TransactionType
from gravity.sandbox.control import SandboxControl
from tests.gravity.conftest import OID, PostbackReceiver, looked_up, new_id, trans_id, wait_until

DEVICE = "front-1"


async def _start(client: GravityClient, cents: int = 5_000, **kw) -> str:
    external_id = new_id()
    await client.start_terminal(device_name=kw.pop("device", DEVICE), external_id=external_id, amount_cents=cents, **kw)
    return external_id


async def test_list_devices_shows_online_and_busy(client: GravityClient, control: SandboxControl) -> None:
    assert await client.list_devices() == [Device("exam-room", True, False), Device("front-1", True, False), Device("front-2", True, False)]
    await _start(client)
    control.set_device(OID, "exam-room", online=False)
    devices = {d.name: d for d in await client.list_devices()}
    assert devices["front-1"].busy and not devices["front-2"].busy and not devices["exam-room"].online


async def test_approved_at_the_terminal(client: GravityClient, control: SandboxControl, receiver: PostbackReceiver) -> None:
    external_id = await _start(client, 7_250, reference="INV-7")
    assert await client.lookup(external_id) is None  # 404 while the customer has not finished
    control.present_card(OID, DEVICE, "approve")
    result = await client.lookup(external_id)
    assert result is not None and result.outcome is Outcome.APPROVED
    assert (result.amount_cents, result.approved_cents, result.reference) == (7_250, 7_250, "INV-7")
    assert result.entry_method == "Contactless" and result.transaction_type is TransactionType.CREDIT_SALE
    await wait_until(lambda: external_id in receiver.results)
    assert receiver.results[external_id] == result
    assert not {d.name: d for d in await client.list_devices()}[DEVICE].busy


async def test_declined_by_test_card_and_by_script(client: GravityClient, control: SandboxControl) -> None:
    first = await _start(client)
    control.present_card(OID, DEVICE, card_number="4000000000009995", entry_method="Chip")
    result = await looked_up(client, first)
    assert (result.outcome, result.decline_reason, result.decline_class, result.entry_method) == (
        Outcome.DECLINED,
        DeclineReason.INSUFFICIENT_FUNDS,
        DeclineClass.SOFT,
        "Chip",
    )
    second = await _start(client)
    control.present_card(OID, DEVICE, "decline", reason="lost_or_stolen")
    result = await looked_up(client, second)
    assert (result.decline_reason, result.decline_class) == (DeclineReason.LOST_OR_STOLEN, DeclineClass.HARD)


async def test_partial_approval_at_the_terminal(client: GravityClient, control: SandboxControl) -> None:
    external_id = await _start(client, 10_000)
    control.present_card(OID, DEVICE, "partial", approved_cents=6_000)
    result = await looked_up(client, external_id)
    assert (result.outcome, result.approved_cents, result.balance_cents) == (Outcome.PARTIAL, 6_000, 4_000)


async def test_cancel_while_waiting(client: GravityClient) -> None:
    external_id = await _start(client)
    assert await client.cancel_terminal(device_name=DEVICE, external_id=external_id) is True
    assert await client.lookup(external_id) is None
    assert await client.cancel_terminal(device_name=DEVICE, external_id=external_id) is True  # harmless twice
    await _start(client)  # the device is free again


async def test_cancel_after_completion_is_false(client: GravityClient, control: SandboxControl) -> None:
    external_id = await _start(client)
    control.present_card(OID, DEVICE)
    assert await client.cancel_terminal(device_name=DEVICE, external_id=external_id) is False
    # A late approval found this way must be voided: the void works on it.
    sale = await looked_up(client, external_id)
    assert (await client.void(unique_trans_id=trans_id(sale), external_id=new_id())).transaction_type is TransactionType.VOID


async def test_customer_cancels_on_the_device(client: GravityClient, control: SandboxControl, receiver: PostbackReceiver) -> None:
    external_id = await _start(client)
    control.cancel_on_device(OID, DEVICE)
    result = await looked_up(client, external_id)
    assert (result.outcome, result.decline_reason, result.result_message) == (Outcome.DECLINED, DeclineReason.CANCELLED, "Cancelled")
    assert await client.cancel_terminal(device_name=DEVICE, external_id=external_id) is False
    await wait_until(lambda: external_id in receiver.results)


async def test_customer_walks_away(client: GravityClient, control: SandboxControl) -> None:
    external_id = await _start(client)
    control.walk_away(OID, DEVICE)
    assert await client.lookup(external_id) is None  # nothing ever happened
    assert await client.cancel_terminal(device_name=DEVICE, external_id=external_id) is True
    assert not {d.name: d for d in await client.list_devices()}[DEVICE].busy


async def test_busy_offline_and_unknown_devices(client: GravityClient, control: SandboxControl) -> None:
    await _start(client)
    with pytest.raises(DeviceBusy, match="busy"):
        await _start(client)
    control.set_device(OID, "front-2", online=False)
    with pytest.raises(DeviceBusy, match="offline"):
        await _start(client, device="front-2")
    with pytest.raises(NotFound):
        await _start(client, device="no-such-device")
    with pytest.raises(NotFound):
        await client.cancel_terminal(device_name="front-2", external_id=new_id())


async def test_reused_external_id_at_the_terminal(client: GravityClient, control: SandboxControl) -> None:
    external_id = await _start(client)
    control.present_card(OID, DEVICE)
    with pytest.raises(ExternalIdReused):
        await client.start_terminal(device_name="front-2", external_id=external_id, amount_cents=100)


async def test_saved_card_from_a_tap_can_be_charged_later(client: GravityClient, control: SandboxControl) -> None:
    external_id = await _start(client, 2_000, save_card=True)
    control.present_card(OID, DEVICE, card_number="5555555555554444")
    tapped = await looked_up(client, external_id)
    assert tapped.card_brand == "MC" and tapped.card_ref
    later = await client.charge_saved_card(card_ref=tapped.card_ref, amount_cents=3_000, external_id=new_id())
    assert later.approved and later.fingerprint == tapped.fingerprint


async def test_return_at_the_terminal(client: GravityClient, control: SandboxControl) -> None:
    external_id = await _start(client, 1_500, transaction_type="CreditReturn")
    control.present_card(OID, DEVICE)
    result = await looked_up(client, external_id)
    assert result.transaction_type is TransactionType.CREDIT_RETURN and result.approved_cents == 1_500
