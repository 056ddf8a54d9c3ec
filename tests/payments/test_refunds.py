"""Refunds and voids of counter payments: void while Gravity allows it, refund after, never more
than what remains refundable."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from temporalio.testing import WorkflowEnvironment

from gravity.directory import GatewayDirectory
from gravity.sandbox.control import SandboxControl
from operations.payments import PaymentRefused
from tests.payments.conftest import Receiver
from tests.payments.helpers import OID, assert_clearing_matches_gateway, counter_invoice, gateway_row, invoice, pay_at_counter, payment, refund, refunds_of
from tests.subscriptions.helpers import assert_books_match_gateway
from tests.support.clinic import Clinic


async def test_full_refund_inside_the_void_window_is_a_void(
    db: Engine, sandbox: SandboxControl, temporal_env: WorkflowEnvironment, gateways: GatewayDirectory, clinic: Clinic, ready: Receiver
) -> None:
    invoice_id = counter_invoice(db, clinic, 9_000)
    payment_id = await pay_at_counter(temporal_env, db, gateways, sandbox, clinic, invoice_id)

    given = await refund(temporal_env, db, payment_id, request_id="r1", reason="client changed their mind")
    assert (given.kind, given.amount_cents) == ("void", 9_000)
    again = await refund(temporal_env, db, payment_id, request_id="r1")  # a retried request
    assert again == given
    row = payment(db, payment_id)
    assert (row.status, row.refunded_cents) == ("voided", 9_000)
    assert gateway_row(sandbox, row.external_transaction_id)["voided"]
    credit_note = refunds_of(db, payment_id)[0]
    assert (credit_note.invoice_id, credit_note.kind, credit_note.status) == (invoice_id, "void", "done")
    assert invoice(db, invoice_id).status == "paid"  # a credit note, not a cancelled invoice
    with pytest.raises(PaymentRefused, match="nothing left"):
        await refund(temporal_env, db, payment_id, request_id="r2")
    assert_books_match_gateway(db, sandbox)
    assert_clearing_matches_gateway(db, sandbox)


async def test_full_refund_after_settlement_is_a_refund(
    db: Engine, sandbox: SandboxControl, temporal_env: WorkflowEnvironment, gateways: GatewayDirectory, clinic: Clinic, ready: Receiver
) -> None:
    invoice_id = counter_invoice(db, clinic, 9_000)
    payment_id = await pay_at_counter(temporal_env, db, gateways, sandbox, clinic, invoice_id)
    sandbox.settle(OID)

    given = await refund(temporal_env, db, payment_id, request_id="r1")
    assert (given.kind, given.amount_cents) == ("refund", 9_000)
    assert [(r.kind, r.status) for r in refunds_of(db, payment_id)] == [("void", "failed"), ("refund", "done")]
    sale = gateway_row(sandbox, payment(db, payment_id).external_transaction_id)
    assert (sale["voided"], sale["refunded_cents"]) == (False, 9_000)
    assert_books_match_gateway(db, sandbox)
    assert_clearing_matches_gateway(db, sandbox)


async def test_partial_refunds_up_to_the_limit_and_not_one_cent_more(
    db: Engine, sandbox: SandboxControl, temporal_env: WorkflowEnvironment, gateways: GatewayDirectory, clinic: Clinic, ready: Receiver
) -> None:
    invoice_id = counter_invoice(db, clinic, 10_000)
    payment_id = await pay_at_counter(temporal_env, db, gateways, sandbox, clinic, invoice_id)

    first = await refund(temporal_env, db, payment_id, amount_cents=3_000, request_id="a")
    assert (first.kind, first.amount_cents) == ("refund", 3_000)  # part of a sale is never a void
    with pytest.raises(PaymentRefused, match="exceeds the 7000 cents"):
        await refund(temporal_env, db, payment_id, amount_cents=7_001, request_id="b")
    second = await refund(temporal_env, db, payment_id, amount_cents=7_000, request_id="c")
    assert second.amount_cents == 7_000
    with pytest.raises(PaymentRefused, match="nothing left"):
        await refund(temporal_env, db, payment_id, amount_cents=1, request_id="d")
    assert [(r.amount_cents, r.status) for r in refunds_of(db, payment_id)] == [(3_000, "done"), (7_000, "done")]
    assert payment(db, payment_id).refunded_cents == 10_000
    assert gateway_row(sandbox, payment(db, payment_id).external_transaction_id)["refunded_cents"] == 10_000
    assert_books_match_gateway(db, sandbox)
    assert_clearing_matches_gateway(db, sandbox)
