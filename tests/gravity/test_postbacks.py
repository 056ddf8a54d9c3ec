"""Contract: signed postbacks from the sandbox to a real receiver, verified over the raw body;
retries, bad signatures, duplicate and out-of-order delivery; bulk runs reported by postback."""

from __future__ import annotations

import json

import pytest

from gravity.client import GravityClient
from gravity.errors import BadRequest
from gravity.postback import parse_postback, sign, verify
from gravity.results import BulkSale, DeclineReason, Outcome
from gravity.sandbox.control import SandboxControl
from tests.gravity.conftest import OID, PostbackReceiver, looked_up, new_id, save_card, wait_until

DEVICE = "front-2"


def test_sign_and_verify_over_raw_bytes() -> None:
    body = b'{"externalTransactionId":"a","resultStatus":"true","amount":"1.00"}'
    signature = sign(body, "secret")
    assert verify(body, signature, "secret")
    assert not verify(body, signature, "other-secret")
    assert not verify(body + b" ", signature, "secret")  # re-serialised JSON is another body
    assert not verify(body, None, "secret") and not verify(body, "", "secret") and not verify(body, "%%%", "secret")
    assert not verify(body, signature, "")


def test_parse_postback_flat_and_junk() -> None:
    flat = {
        "externalTransactionId": "e1",
        "uniqueTransId": "u1",
        "transactionType": "CreditSale",
        "resultStatus": "false",
        "resultMessage": "Do Not Honor",
        "amount": "10.00",
        "amountProcessed": "",
        "amountBalance": "",
    }
    result = parse_postback(json.dumps(flat).encode())
    assert (result.outcome, result.decline_reason, result.amount_cents, result.approved_cents) == (Outcome.DECLINED, DeclineReason.DO_NOT_HONOR, 1000, 0)
    for junk in (b"not json", b"[]", b'{"resultStatus": "true"}', b'{"externalTransactionId": "e", "amount": "1e3"}'):
        with pytest.raises(ValueError):
            parse_postback(junk)


async def _deliveries(control: SandboxControl, count: int) -> list[dict]:
    """The sandbox logs an attempt once the receiver's answer is back: wait for `count` of them."""
    await wait_until(lambda: len(control.postbacks()["deliveries"]) >= count)
    return control.postbacks()["deliveries"]


async def _terminal_sale(client: GravityClient, control: SandboxControl, cents: int = 1_000) -> str:
    external_id = new_id()
    await client.start_terminal(device_name=DEVICE, external_id=external_id, amount_cents=cents)
    control.present_card(OID, DEVICE)
    return external_id


async def test_good_signature_is_accepted(client: GravityClient, control: SandboxControl, receiver: PostbackReceiver) -> None:
    external_id = await _terminal_sale(client, control, 3_300)
    await wait_until(lambda: external_id in receiver.results)
    assert receiver.results[external_id].approved_cents == 3_300 and receiver.rejected == 0
    deliveries = await _deliveries(control, 1)
    assert [(d["external_transaction_id"], d["status"]) for d in deliveries] == [(external_id, 200)]


async def test_bad_signature_is_rejected_then_the_retry_is_accepted(client: GravityClient, control: SandboxControl, receiver: PostbackReceiver) -> None:
    control.configure_postbacks(bad_signature_next=2)
    external_id = await _terminal_sale(client, control)
    await wait_until(lambda: external_id in receiver.results)
    assert receiver.rejected == 2 and receiver.arrivals == [external_id]  # nothing stored from the bad ones
    statuses = [(d["status"], d["bad_signature"]) for d in await _deliveries(control, 3)]
    assert statuses == [(401, True), (401, True), (200, False)]


async def test_failed_delivery_is_retried_with_backoff(client: GravityClient, control: SandboxControl, receiver: PostbackReceiver) -> None:
    receiver.fail_next = 3
    external_id = await _terminal_sale(client, control)
    await wait_until(lambda: external_id in receiver.results)
    assert [d["status"] for d in await _deliveries(control, 4)] == [503, 503, 503, 200]


async def test_duplicate_delivery_is_deduplicated_by_the_receiver(client: GravityClient, control: SandboxControl, receiver: PostbackReceiver) -> None:
    control.configure_postbacks(duplicate_next=1)
    external_id = await _terminal_sale(client, control)
    await wait_until(lambda: len(receiver.arrivals) == 2)
    assert receiver.arrivals == [external_id, external_id] and list(receiver.results) == [external_id]


async def test_out_of_order_delivery(client: GravityClient, control: SandboxControl, receiver: PostbackReceiver) -> None:
    control.configure_postbacks(hold=True)
    first = await _terminal_sale(client, control)
    second = await _terminal_sale(client, control)
    assert control.postbacks()["config"]["held"] == 2 and receiver.arrivals == []
    assert control.release_postbacks("reverse") == 2
    await wait_until(lambda: len(receiver.arrivals) == 2)
    assert receiver.arrivals == [second, first]


async def test_bulk_sales_are_reported_by_postback(client: GravityClient, control: SandboxControl, receiver: PostbackReceiver) -> None:
    cards = [await save_card(client) for _ in range(3)]
    control.decline_next(cards[1], "insufficient_funds")
    sales = [BulkSale(card_ref=card, amount_cents=1_000 + i, external_id=new_id(), reference=f"INV-{i}") for i, card in enumerate(cards)]
    assert await client.bulk_sale(sales) == 3
    await wait_until(lambda: len(receiver.results) == 3)
    outcomes = [receiver.results[s.external_id].outcome for s in sales]
    assert outcomes == [Outcome.APPROVED, Outcome.DECLINED, Outcome.APPROVED]
    assert receiver.results[sales[2].external_id].approved_cents == 1_002
    assert (await looked_up(client, sales[0].external_id)).reference == "INV-0"
    assert await client.bulk_sale(sales) == 3  # a retried run replays (same key, same body): no new sales
    assert sum(1 for t in control.transactions(OID) if t["source"] == "bulk") == 3


async def test_bulk_is_refused_whole_when_one_item_is_bad(client: GravityClient, control: SandboxControl) -> None:
    card = await save_card(client)
    sales = [BulkSale(card, 100, new_id()), BulkSale("unknown-card", 100, new_id())]
    with pytest.raises(BadRequest, match=r"requests\[1\]"):
        await client.bulk_sale(sales)
    assert not [t for t in control.transactions(OID) if t["source"] == "bulk"]
    with pytest.raises(ValueError):
        await client.bulk_sale([BulkSale(card, 100, new_id())] * 1001)
    assert await client.bulk_sale([]) == 0
