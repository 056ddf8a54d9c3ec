"""Terminal payments at the counter, on the real dev server, database and sandbox (over HTTP)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from gravity.directory import GatewayDirectory
from gravity.sandbox.control import SandboxControl
from models.billing import Payment
from models.clinic import SavedCard
from models.outbox import OutboxEvent
from operations.payments import PaymentRefused, cancel_terminal_payment
from tests.payments.conftest import Receiver
from tests.payments.helpers import (
    DEVICE,
    OID,
    assert_books_match,
    assert_clearing_matches_gateway,
    counter_invoice,
    gateway_row,
    invoice,
    payment,
    payments_of,
    refunds_of,
    start_at_counter,
    wait_for_state,
)
from tests.subscriptions.helpers import assert_books_match_gateway
from tests.support.clinic import Clinic, make_clinic


async def test_approved_at_the_terminal_pays_the_invoice(
    db: Engine, sandbox: SandboxControl, temporal_env: WorkflowEnvironment, gateways: GatewayDirectory, clinic: Clinic, ready: Receiver
) -> None:
    invoice_id = counter_invoice(db, clinic, 10_000)
    handle = await start_at_counter(temporal_env, db, gateways, clinic, invoice_id=invoice_id)
    await wait_for_state(handle, "waiting_at_counter")
    sandbox.present_card(OID, DEVICE)

    outcome = await handle.result()
    assert (outcome.status, outcome.approved_cents, outcome.balance_cents) == ("approved", 10_000, 0)
    paid = invoice(db, invoice_id)
    assert (paid.status, paid.paid_cents) == ("paid", 10_000)
    row = payment(db, outcome.payment_id)
    assert (row.method, row.status, row.masked_number) == ("terminal", "approved", "************1111")
    assert gateway_row(sandbox, row.external_transaction_id)["reference"] == invoice_id
    assert (200, "routed") in ready.answers
    assert_books_match_gateway(db, sandbox)
    assert_clearing_matches_gateway(db, sandbox)


async def test_declined_at_the_terminal_leaves_the_invoice_open(
    db: Engine, sandbox: SandboxControl, temporal_env: WorkflowEnvironment, gateways: GatewayDirectory, clinic: Clinic, ready: Receiver
) -> None:
    invoice_id = counter_invoice(db, clinic, 7_500)
    handle = await start_at_counter(temporal_env, db, gateways, clinic, invoice_id=invoice_id)
    await wait_for_state(handle, "waiting_at_counter")
    sandbox.present_card(OID, DEVICE, "decline", reason="insufficient_funds")

    outcome = await handle.result()
    assert (outcome.status, outcome.approved_cents, outcome.balance_cents) == ("declined", 0, 7_500)
    row = payment(db, outcome.payment_id)
    assert (row.status, row.decline_reason, row.decline_class) == ("declined", "insufficient_funds", "soft")
    assert invoice(db, invoice_id).status == "open"
    assert_books_match_gateway(db, sandbox)


async def test_partial_approval_records_what_was_approved_and_the_rest_is_paid_later(
    db: Engine, sandbox: SandboxControl, temporal_env: WorkflowEnvironment, gateways: GatewayDirectory, clinic: Clinic, ready: Receiver
) -> None:
    invoice_id = counter_invoice(db, clinic, 10_000)
    first = await start_at_counter(temporal_env, db, gateways, clinic, invoice_id=invoice_id)
    await wait_for_state(first, "waiting_at_counter")
    sandbox.present_card(OID, DEVICE, "partial", approved_cents=4_000)
    outcome = await first.result()
    assert (outcome.status, outcome.approved_cents, outcome.balance_cents) == ("partial", 4_000, 6_000)
    assert (invoice(db, invoice_id).status, invoice(db, invoice_id).paid_cents) == ("open", 4_000)

    second = await start_at_counter(temporal_env, db, gateways, clinic, invoice_id=invoice_id)
    view = await wait_for_state(second, "waiting_at_counter")
    assert payment(db, view.payment_id).amount_cents == 6_000  # the open balance, typed by no one
    sandbox.present_card(OID, DEVICE)
    assert (await second.result()).status == "approved"
    assert (invoice(db, invoice_id).status, invoice(db, invoice_id).paid_cents) == ("paid", 10_000)
    assert_books_match(db, sandbox)
    assert_clearing_matches_gateway(db, sandbox)


async def test_staff_cancel_while_waiting_sends_nothing_more_and_frees_the_device(
    db: Engine, sandbox: SandboxControl, temporal_env: WorkflowEnvironment, gateways: GatewayDirectory, clinic: Clinic, ready: Receiver
) -> None:
    invoice_id = counter_invoice(db, clinic, 5_000)
    handle = await start_at_counter(temporal_env, db, gateways, clinic, invoice_id=invoice_id)
    view = await wait_for_state(handle, "waiting_at_counter")

    answer = await cancel_terminal_payment(temporal_env.client, view.payment_id)
    assert answer.accepted
    outcome = await handle.result()
    assert outcome.status == "cancelled"
    assert payment(db, view.payment_id).status == "failed"
    assert invoice(db, invoice_id).status == "open"
    assert not any(d.busy for d in await gateways.for_oid(OID).list_devices())
    assert sandbox.transactions() == []
    assert_books_match_gateway(db, sandbox)


async def test_customer_cancels_on_the_device(
    db: Engine, sandbox: SandboxControl, temporal_env: WorkflowEnvironment, gateways: GatewayDirectory, clinic: Clinic, ready: Receiver
) -> None:
    invoice_id = counter_invoice(db, clinic, 5_000)
    handle = await start_at_counter(temporal_env, db, gateways, clinic, invoice_id=invoice_id)
    await wait_for_state(handle, "waiting_at_counter")
    sandbox.cancel_on_device(OID, DEVICE)

    outcome = await handle.result()
    assert (outcome.status, outcome.balance_cents) == ("cancelled_on_device", 5_000)
    assert payment(db, outcome.payment_id).decline_reason == "cancelled"
    assert_books_match_gateway(db, sandbox)


async def test_lost_postback_is_resolved_by_polling(
    db: Engine, sandbox: SandboxControl, temporal_env: WorkflowEnvironment, gateways: GatewayDirectory, clinic: Clinic, ready: Receiver
) -> None:
    sandbox.configure_postbacks(hold=True)  # Gravity's postback never arrives (until much later)
    invoice_id = counter_invoice(db, clinic, 6_000)
    handle = await start_at_counter(temporal_env, db, gateways, clinic, invoice_id=invoice_id)
    await wait_for_state(handle, "waiting_at_counter")
    sandbox.present_card(OID, DEVICE)

    outcome = await handle.result()
    assert (outcome.status, outcome.approved_cents) == ("approved", 6_000)
    assert ready.answers == []  # nothing came by postback: polling found it
    sandbox.release_postbacks("fifo")  # the late postback is harmless
    await _until(lambda: ready.answers)
    assert ready.answers == [(200, "ignored")]
    assert len(payments_of(db, invoice_id)) == 1
    assert_books_match_gateway(db, sandbox)


async def test_duplicated_and_out_of_order_postbacks_are_harmless(
    db: Engine, sandbox: SandboxControl, temporal_env: WorkflowEnvironment, gateways: GatewayDirectory, clinic: Clinic, ready: Receiver
) -> None:
    from tests.payments.helpers import COARSE

    sandbox.configure_postbacks(hold=True, duplicate_next=2)
    first_invoice, second_invoice = counter_invoice(db, clinic, 3_000), counter_invoice(db, clinic, 4_000)
    first = await start_at_counter(temporal_env, db, gateways, clinic, invoice_id=first_invoice, device_name="counter-1", timing=COARSE)
    second = await start_at_counter(temporal_env, db, gateways, clinic, invoice_id=second_invoice, device_name="counter-2", timing=COARSE)
    await wait_for_state(first, "waiting_at_counter")
    await wait_for_state(second, "waiting_at_counter")
    sandbox.present_card(OID, "counter-1")
    sandbox.present_card(OID, "counter-2", card_number="5555555555554444")
    assert sandbox.release_postbacks("reverse") == 4  # each twice, the second payment's first

    assert (await first.result()).approved_cents == 3_000
    assert (await second.result()).approved_cents == 4_000
    await _until(lambda: len(ready.answers) == 4)
    assert all(code == 200 for code, _ in ready.answers)
    assert sum(status == "routed" for _, status in ready.answers) >= 2
    assert [len(payments_of(db, i)) for i in (first_invoice, second_invoice)] == [1, 1]
    assert invoice(db, first_invoice).paid_cents == 3_000 and invoice(db, second_invoice).paid_cents == 4_000
    assert_books_match_gateway(db, sandbox)
    assert_clearing_matches_gateway(db, sandbox)


async def test_postback_with_a_bad_signature_is_refused_and_records_nothing(
    db: Engine, sandbox: SandboxControl, temporal_env: WorkflowEnvironment, gateways: GatewayDirectory, clinic: Clinic, ready: Receiver
) -> None:
    from foundation.contracts import TerminalTiming
    from operations.payments import PostbackRejected, receive_postback

    sandbox.configure_postbacks(bad_signature_next=2, max_attempts=2)
    invoice_id = counter_invoice(db, clinic, 2_500)
    handle = await start_at_counter(temporal_env, db, gateways, clinic, invoice_id=invoice_id, timing=TerminalTiming(poll_every_s=4))
    view = await wait_for_state(handle, "waiting_at_counter")
    sandbox.present_card(OID, DEVICE)
    await _until(lambda: len(ready.answers) == 2, timeout=3)
    assert [status for status, _ in ready.answers] == [401, 401]
    assert payment(db, view.payment_id).status == "pending"  # nothing was read from the forged bodies

    with pytest.raises(PostbackRejected) as refused:
        await receive_postback(temporal_env.client, db, body=b'{"externalTransactionId":"x","resultStatus":"true"}', signature="AAAA", secret="s3cret")
    assert refused.value.status == 401

    outcome = await handle.result()  # polling still learns the truth from Gravity
    assert outcome.status == "approved"
    assert_books_match_gateway(db, sandbox)


async def _until(check: Callable[[], object], timeout: float = 10.0) -> None:
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def test_customer_walks_away_then_manual_review(
    db: Engine, sandbox: SandboxControl, temporal_env: WorkflowEnvironment, gateways: GatewayDirectory, clinic: Clinic, ready: Receiver
) -> None:
    from tests.payments.helpers import COARSE

    invoice_id = counter_invoice(db, clinic, 5_000)
    handle = await start_at_counter(temporal_env, db, gateways, clinic, invoice_id=invoice_id, timing=COARSE)
    view = await wait_for_state(handle, "waiting_at_counter")
    sandbox.walk_away(OID, DEVICE)

    await temporal_env.fast_forward(handle)  # 3 minutes at the counter, then 30 in the background
    outcome = await handle.result()
    assert outcome.status == "manual_review"
    assert payment(db, view.payment_id).status == "unknown"
    with Session(db) as session:
        events = session.exec(select(OutboxEvent).where(OutboxEvent.type == "payment.manual_review")).all()
    assert [e.payload["payment_id"] for e in events] == [view.payment_id]
    assert invoice(db, invoice_id).status == "open"
    assert_books_match_gateway(db, sandbox)


async def test_timeout_at_the_counter_then_a_late_approval_is_voided(
    db: Engine, sandbox: SandboxControl, temporal_env: WorkflowEnvironment, gateways: GatewayDirectory, clinic: Clinic, ready: Receiver
) -> None:
    from datetime import timedelta

    from tests.payments.helpers import COARSE

    invoice_id = counter_invoice(db, clinic, 8_000)
    handle = await start_at_counter(temporal_env, db, gateways, clinic, invoice_id=invoice_id, timing=COARSE)
    view = await wait_for_state(handle, "waiting_at_counter")
    sandbox.inject_fault("deviceCancel", "500", count=3)  # our cancel never reaches the device

    await temporal_env.fast_forward(handle, timedelta(minutes=3, seconds=30))
    await wait_for_state(handle, "timed_out_at_counter")
    sandbox.present_card(OID, DEVICE)  # the customer comes back and taps after all

    outcome = await handle.result()
    assert outcome.status == "late_approval_voided"
    row = payment(db, view.payment_id)
    assert (row.status, row.approved_cents, row.refunded_cents) == ("voided", 8_000, 8_000)
    assert [(r.kind, r.status, r.amount_cents) for r in refunds_of(db, row.id)] == [("void", "done", 8_000)]
    assert gateway_row(sandbox, row.external_transaction_id)["voided"]
    reopened = invoice(db, invoice_id)
    assert (reopened.status, reopened.paid_cents) == ("open", 0)  # the client still owes it
    assert_books_match_gateway(db, sandbox)
    assert_clearing_matches_gateway(db, sandbox)


async def test_refused_before_anything_is_sent(
    db: Engine, sandbox: SandboxControl, temporal_env: WorkflowEnvironment, gateways: GatewayDirectory, clinic: Clinic, ready: Receiver
) -> None:
    invoice_id = counter_invoice(db, clinic, 5_000)
    busy = await start_at_counter(temporal_env, db, gateways, clinic, invoice_id=counter_invoice(db, clinic, 1_000))
    busy_payment = (await wait_for_state(busy, "waiting_at_counter")).payment_id
    sandbox.set_device(OID, "counter-2", online=False)
    no_recurring = make_clinic(db, allow_recurring=False)

    cases: list[tuple[dict[str, Any], str]] = [
        ({"invoice_id": invoice_id, "device_name": "counter-1"}, "busy"),
        ({"invoice_id": invoice_id, "device_name": "counter-2"}, "offline"),
        ({"invoice_id": invoice_id, "device_name": "counter-9"}, "unknown device"),
        ({"invoice_id": invoice_id, "amount_cents": 5_001, "device_name": "counter-1"}, "more than the open balance"),
        ({"invoice_id": invoice_id, "amount_cents": 0}, "greater than zero"),
        ({"invoice_id": "inv_nope"}, "unknown invoice"),
    ]
    for fields, reason in cases:
        with pytest.raises(PaymentRefused, match=reason):
            await start_at_counter(temporal_env, db, gateways, clinic, **fields)
    other_invoice = counter_invoice(db, no_recurring, 1_000)
    with pytest.raises(PaymentRefused, match="does not allow"):
        await start_at_counter(temporal_env, db, gateways, no_recurring, invoice_id=other_invoice, save_card=True)
    assert payments_of(db, invoice_id) == []

    assert (await cancel_terminal_payment(temporal_env.client, busy_payment)).accepted
    await busy.result()
    with pytest.raises((WorkflowUpdateFailedError, RPCError)):  # nothing left to cancel
        await cancel_terminal_payment(temporal_env.client, busy_payment)


async def test_paid_invoice_is_refused(
    db: Engine, sandbox: SandboxControl, temporal_env: WorkflowEnvironment, gateways: GatewayDirectory, clinic: Clinic, ready: Receiver
) -> None:
    invoice_id = counter_invoice(db, clinic, 1_500)
    handle = await start_at_counter(temporal_env, db, gateways, clinic, invoice_id=invoice_id)
    await wait_for_state(handle, "waiting_at_counter")
    sandbox.present_card(OID, DEVICE)
    await handle.result()
    with pytest.raises(PaymentRefused, match="already paid"):
        await start_at_counter(temporal_env, db, gateways, clinic, invoice_id=invoice_id)
    assert_books_match_gateway(db, sandbox)


async def test_saved_card_from_the_terminal_pays_the_subscription(
    db: Engine, sandbox: SandboxControl, temporal_env: WorkflowEnvironment, gateways: GatewayDirectory, clinic: Clinic, ready: Receiver
) -> None:
    import pendulum

    from tests.payments.helpers import eventually
    from tests.subscriptions.helpers import invoices, start

    invoice_id = counter_invoice(db, clinic, 2_000)
    handle = await start_at_counter(temporal_env, db, gateways, clinic, invoice_id=invoice_id, save_card=True, make_default=True)
    await wait_for_state(handle, "waiting_at_counter")
    sandbox.present_card(OID, DEVICE, card_number="5555555555554444", expiry_mmyy="0931")
    outcome = await handle.result()
    assert outcome.status == "approved" and outcome.card_id is not None
    sale = payment(db, outcome.payment_id)
    with Session(db) as session:
        card = session.get(SavedCard, outcome.card_id)
    assert card is not None
    assert (card.gravity_ref, card.masked_number, card.brand, card.exp_month, card.exp_year, card.is_default) == (
        sale.gravity_unique_trans_id,
        "************4444",
        "MC",
        9,
        2031,
        True,
    )
    assert card.fingerprint and "4444" not in card.fingerprint  # Gravity's fingerprint, never the number

    yesterday = pendulum.now("America/Chicago").subtract(days=1).date()
    with temporal_env.with_time_skipping_disabled():
        subscription = await start(temporal_env, db, clinic, yesterday, card_id=card.id)
    try:
        subscription_id = subscription.id.split(":", 1)[1]
        first = await eventually(lambda: next((i for i in invoices(db, subscription_id) if i.status == "paid"), None))
        with Session(db) as session:
            charge = session.exec(select(Payment).where(Payment.invoice_id == first.id, Payment.status == "approved")).one()
        assert (charge.card_id, charge.method) == (card.id, "card_on_file")
        assert gateway_row(sandbox, charge.external_transaction_id)["transaction_type"] == "CreditSale"
    finally:
        await subscription.terminate("test over")
    assert_books_match_gateway(db, sandbox)


async def test_a_late_approval_booked_again_after_its_void_is_not_booked_twice(
    db: Engine, sandbox: SandboxControl, temporal_env: WorkflowEnvironment, gateways: GatewayDirectory, clinic: Clinic, ready: Receiver
) -> None:
    """Chaos seed 7: the booking activity of a late approval was retried after it had voided the
    sale; the second try booked the voided payment as a new approval, and its "excess" became
    client credit the ledger never held."""
    from datetime import timedelta

    from sqlmodel import Session, select
    from temporalio.testing import ActivityEnvironment

    from activities.terminal import TerminalActivities, gateway_result
    from foundation.contracts import TerminalRecord
    from models.billing import Deposit
    from tests.payments.helpers import COARSE

    invoice_id = counter_invoice(db, clinic, 8_000)
    handle = await start_at_counter(temporal_env, db, gateways, clinic, invoice_id=invoice_id, timing=COARSE)
    view = await wait_for_state(handle, "waiting_at_counter")
    sandbox.inject_fault("deviceCancel", "500", count=3)
    await temporal_env.fast_forward(handle, timedelta(minutes=3, seconds=30))
    await wait_for_state(handle, "timed_out_at_counter")
    sandbox.present_card(OID, DEVICE)
    assert (await handle.result()).status == "late_approval_voided"

    found = await gateways.for_oid(OID).lookup(payment(db, view.payment_id).external_transaction_id)
    assert found is not None
    again = TerminalRecord(view.payment_id, gateway_result(found), late=True)
    await ActivityEnvironment().run(TerminalActivities(db, gateways).record_terminal_result, again)

    row = payment(db, view.payment_id)
    assert (row.status, row.approved_cents, row.refunded_cents) == ("voided", 8_000, 8_000)
    with Session(db) as session:
        assert session.exec(select(Deposit).where(Deposit.client_id == clinic.client_id)).all() == []
    assert (invoice(db, invoice_id).status, invoice(db, invoice_id).paid_cents) == ("open", 0)
    assert_books_match_gateway(db, sandbox)
    assert_clearing_matches_gateway(db, sandbox)
