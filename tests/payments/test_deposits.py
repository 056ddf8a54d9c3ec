"""Deposits: client credit taken from a saved card or at the terminal, spent oldest first on the
next subscription invoice before any card is charged, given back when cancelled or unused."""

from __future__ import annotations

import pendulum
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio.testing import WorkflowEnvironment

from books.attempts import lock_invoice
from books.credit import apply_client_credit
from gravity.directory import GatewayDirectory
from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from models.billing import Deposit, Payment
from models.db import session_scope
from operations.payments import CounterLine, PaymentRefused, cancel_invoice, create_counter_invoice_for, take_terminal_deposit
from tests.payments.conftest import Receiver
from tests.payments.helpers import (
    DEVICE,
    OID,
    QUICK,
    TASK_QUEUE,
    assert_clearing_matches_gateway,
    card_deposit,
    deposit_refund,
    eventually,
    gateway_row,
    invoice,
    wait_for_state,
)
from tests.subscriptions.helpers import assert_books_match_gateway, invoices, start
from tests.support.cards import save_card
from tests.support.clinic import Clinic


def deposit(engine: Engine, deposit_id: str) -> Deposit:
    with Session(engine) as session:
        row = session.get(Deposit, deposit_id)
        assert row is not None
        return row


async def test_deposit_pays_the_next_subscription_invoice_then_comes_back_when_it_is_cancelled(
    db: Engine,
    sandbox: SandboxControl,
    sandbox_server: SandboxServer,
    temporal_env: WorkflowEnvironment,
    gateways: GatewayDirectory,
    clinic: Clinic,
    ready: Receiver,
) -> None:
    card_id, _ = await save_card(db, sandbox_server, clinic)
    taken = await card_deposit(temporal_env, db, client_id=clinic.client_id, card_id=card_id, amount_cents=5_000, request_id="dep-1")
    assert taken == await card_deposit(temporal_env, db, client_id=clinic.client_id, card_id=card_id, amount_cents=5_000, request_id="dep-1")
    assert taken.status == "approved" and taken.deposit_id is not None
    assert (deposit(db, taken.deposit_id).remaining_cents, deposit(db, taken.deposit_id).status) == (5_000, "held")

    yesterday = pendulum.now("America/Chicago").subtract(days=1).date()
    with temporal_env.with_time_skipping_disabled():
        subscription = await start(temporal_env, db, clinic, yesterday, card_id=card_id)
    try:
        subscription_id = subscription.id.split(":", 1)[1]
        first = await eventually(lambda: next((i for i in invoices(db, subscription_id) if i.status == "paid"), None))
        assert first.paid_cents == 4_500
        assert deposit(db, taken.deposit_id).remaining_cents == 500  # the credit paid it...
        assert not [r for r in sandbox.transactions() if r["reference"] == first.id]  # ...no card was charged

        handle = await cancel_invoice(temporal_env.client, db, invoice_id=first.id, reason="pet moved away", task_queue=TASK_QUEUE)
        outcome = await handle.result()
        assert (outcome.status, outcome.credit_returned_cents, outcome.compensated) == ("void", 4_500, [])
        assert invoice(db, first.id).status == "void"
        assert (deposit(db, taken.deposit_id).remaining_cents, deposit(db, taken.deposit_id).status) == (5_000, "held")
    finally:
        await subscription.terminate("test over")

    given = await deposit_refund(temporal_env, db, taken.deposit_id, request_id="back-1")
    assert (given.kind, given.amount_cents) == ("void", 5_000)  # whole and unsettled: voided
    assert (deposit(db, taken.deposit_id).remaining_cents, deposit(db, taken.deposit_id).status) == (0, "refunded")
    with pytest.raises(PaymentRefused, match="no unused credit"):
        await deposit_refund(temporal_env, db, taken.deposit_id, request_id="back-2")
    assert_books_match_gateway(db, sandbox)
    assert_clearing_matches_gateway(db, sandbox)


async def test_terminal_deposit_partly_used_then_the_rest_refunded(
    db: Engine, sandbox: SandboxControl, temporal_env: WorkflowEnvironment, gateways: GatewayDirectory, clinic: Clinic, ready: Receiver
) -> None:
    with temporal_env.with_time_skipping_disabled():
        handle = await take_terminal_deposit(
            temporal_env.client,
            db,
            gateways,
            client_id=clinic.client_id,
            location_id=clinic.location_id,
            device_name=DEVICE,
            amount_cents=3_000,
            task_queue=TASK_QUEUE,
            timing=QUICK,
        )
    await wait_for_state(handle, "waiting_at_counter")
    sandbox.present_card(OID, DEVICE)
    outcome = await handle.result()
    assert outcome.status == "approved" and outcome.deposit_id is not None
    with Session(db) as session:
        funding = session.exec(select(Payment).where(Payment.id == outcome.payment_id)).one()
    assert (funding.purpose, funding.invoice_id, funding.method) == ("deposit", None, "terminal")
    assert gateway_row(sandbox, funding.external_transaction_id)["reference"] == f"deposit:{funding.id}"

    # Spend part of it the way a subscription invoice does (apply_client_credit, oldest first).
    invoice_id = create_counter_invoice_for(db, client_id=clinic.client_id, location_id=clinic.location_id, lines=[CounterLine("Vaccine", 1_200)])
    with session_scope(db) as session:
        locked = lock_invoice(session, invoice_id)
        assert locked is not None
        assert apply_client_credit(session, locked) == 1_200

    given = await deposit_refund(temporal_env, db, outcome.deposit_id, request_id="unused")
    assert (given.kind, given.amount_cents) == ("refund", 1_800)  # part of the sale: a refund
    assert (deposit(db, outcome.deposit_id).remaining_cents, deposit(db, outcome.deposit_id).status) == (0, "refunded")
    assert gateway_row(sandbox, funding.external_transaction_id)["refunded_cents"] == 1_800
    assert_books_match_gateway(db, sandbox)
    assert_clearing_matches_gateway(db, sandbox)
