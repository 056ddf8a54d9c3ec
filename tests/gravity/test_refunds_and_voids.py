"""Contract: refunds up to what is left of a sale, voids inside / outside the window / after settlement."""

from __future__ import annotations

import pytest

from gravity import conventions as C
from gravity.client import GravityClient
from gravity.errors import BadRequest, RefundExceedsRemaining, VoidNotPossible
from gravity.results import Outcome, TransactionResult, TransactionType
from gravity.sandbox.control import SandboxControl
from tests.gravity.conftest import OID, new_id, save_card, trans_id


async def _sale(client: GravityClient, cents: int = 10_000) -> TransactionResult:
    card = await save_card(client)
    return await client.charge_saved_card(card_ref=card, amount_cents=cents, external_id=new_id())


def _row(control: SandboxControl, external_id: str) -> dict:
    [row] = [t for t in control.transactions(OID) if t["external_transaction_id"] == external_id]
    return row


async def test_refunds_up_to_the_remaining_amount(client: GravityClient, control: SandboxControl) -> None:
    sale = await _sale(client, 10_000)
    first = await client.refund(unique_trans_id=trans_id(sale), amount_cents=2_501, external_id=new_id())
    assert first.outcome is Outcome.APPROVED and first.transaction_type is TransactionType.CREDIT_RETURN
    assert (first.amount_cents, first.approved_cents) == (2_501, 2_501)
    with pytest.raises(RefundExceedsRemaining):  # one cent past what is left
        await client.refund(unique_trans_id=trans_id(sale), amount_cents=7_500, external_id=new_id())
    rest = await client.refund(unique_trans_id=trans_id(sale), amount_cents=7_499, external_id=new_id())
    assert rest.approved_cents == 7_499
    with pytest.raises(RefundExceedsRemaining):
        await client.refund(unique_trans_id=trans_id(sale), amount_cents=1, external_id=new_id())
    assert _row(control, sale.external_transaction_id)["refunded_cents"] == 10_000


async def test_refund_of_a_partial_approval_is_limited_to_what_was_approved(client: GravityClient, control: SandboxControl) -> None:
    card = await save_card(client)
    control.partial_next(card, approved_cents=600)
    sale = await client.charge_saved_card(card_ref=card, amount_cents=1_000, external_id=new_id())
    with pytest.raises(RefundExceedsRemaining):
        await client.refund(unique_trans_id=trans_id(sale), amount_cents=601, external_id=new_id())
    assert (await client.refund(unique_trans_id=trans_id(sale), amount_cents=600, external_id=new_id())).approved


async def test_refund_of_a_decline_or_unknown_sale_is_refused(client: GravityClient, control: SandboxControl) -> None:
    card = await save_card(client)
    control.decline_next(card, "insufficient_funds")
    declined = await client.charge_saved_card(card_ref=card, amount_cents=1_000, external_id=new_id())
    with pytest.raises(BadRequest):
        await client.refund(unique_trans_id=trans_id(declined), amount_cents=100, external_id=new_id())
    with pytest.raises(BadRequest):
        await client.refund(unique_trans_id="unknown", amount_cents=100, external_id=new_id())


async def test_void_inside_the_window(client: GravityClient, control: SandboxControl) -> None:
    sale = await _sale(client, 3_000)
    control.advance_clock(C.VOID_WINDOW_SECONDS - 5)  # just inside 25 minutes
    void = await client.void(unique_trans_id=trans_id(sale), external_id=new_id())
    assert void.outcome is Outcome.APPROVED and void.transaction_type is TransactionType.VOID
    assert void.approved_cents == 3_000
    row = _row(control, sale.external_transaction_id)
    assert row["voided"] is True and row["voided_cents"] == 3_000
    with pytest.raises(VoidNotPossible):
        await client.void(unique_trans_id=trans_id(sale), external_id=new_id())
    with pytest.raises(RefundExceedsRemaining):  # nothing is left to refund
        await client.refund(unique_trans_id=trans_id(sale), amount_cents=1, external_id=new_id())


async def test_void_after_the_window_becomes_a_refund(client: GravityClient, control: SandboxControl) -> None:
    sale = await _sale(client, 3_000)
    control.advance_clock(C.VOID_WINDOW_SECONDS + 1)
    late = await client.void(unique_trans_id=trans_id(sale), external_id=new_id())
    assert late.outcome is Outcome.APPROVED
    assert late.transaction_type is TransactionType.CREDIT_RETURN  # Gravity turns it into a refund
    assert late.approved_cents == 3_000
    row = _row(control, sale.external_transaction_id)
    assert (row["voided"], row["refunded_cents"]) == (False, 3_000)


async def test_void_after_settlement_is_refused_but_refund_works(client: GravityClient, control: SandboxControl) -> None:
    sale = await _sale(client, 3_000)
    closed = control.settle(OID)
    assert closed[OID]["batch_number"] == 1 and closed[OID]["transactions"] >= 1
    with pytest.raises(VoidNotPossible, match="settled"):
        await client.void(unique_trans_id=trans_id(sale), external_id=new_id())
    refund = await client.refund(unique_trans_id=trans_id(sale), amount_cents=3_000, external_id=new_id())
    assert refund.approved and refund.batch_number == "2"  # the next batch
    assert _row(control, sale.external_transaction_id)["settled"] is True


async def test_void_of_a_partly_refunded_sale_is_refused(client: GravityClient) -> None:
    sale = await _sale(client, 3_000)
    await client.refund(unique_trans_id=trans_id(sale), amount_cents=1_000, external_id=new_id())
    with pytest.raises(VoidNotPossible):
        await client.void(unique_trans_id=trans_id(sale), external_id=new_id())
