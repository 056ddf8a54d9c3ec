"""Cancelling an invoice with three card payments: every payment is given back exactly once, even
when the gateway fails and the worker is killed half-way through."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio.testing import WorkflowEnvironment

from gravity.directory import GatewayDirectory
from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from models.billing import Refund
from operations.payments import PaymentRefused, cancel_invoice
from tests.payments.conftest import Receiver
from tests.payments.helpers import (
    OID,
    TASK_QUEUE,
    assert_clearing_matches_gateway,
    counter_invoice,
    eventually,
    invoice,
    pay_at_counter,
    payment,
    payments_of,
    refund,
    refunds_of,
    spawn_worker,
    start_at_counter,
    stop_worker,
)
from tests.subscriptions.helpers import assert_books_match_gateway
from tests.support.clinic import Clinic

SAGA_QUEUE = "billing-saga-kill"


async def test_cancellation_survives_gateway_faults_and_a_killed_worker(
    db: Engine,
    database_url: str,
    sandbox: SandboxControl,
    sandbox_server: SandboxServer,
    temporal_env: WorkflowEnvironment,
    gateways: GatewayDirectory,
    clinic: Clinic,
    ready: Receiver,
) -> None:
    invoice_id = counter_invoice(db, clinic, 10_000)
    settled = await pay_at_counter(temporal_env, db, gateways, sandbox, clinic, invoice_id, 3_000, device="counter-1")
    sandbox.settle(OID)  # the first payment can only be refunded now
    second = await pay_at_counter(temporal_env, db, gateways, sandbox, clinic, invoice_id, 3_000, device="counter-2")
    third = await pay_at_counter(temporal_env, db, gateways, sandbox, clinic, invoice_id, 4_000, device="counter-1")
    assert invoice(db, invoice_id).status == "paid"

    sandbox.inject_fault("tokenizedRefund", "slow", count=1, delay_s=3)  # the first refund hangs...
    sandbox.inject_fault("void", "500", count=2)  # ...and the gateway fails on the next voids
    address = temporal_env.client.service_client.config.target_host
    first_worker = spawn_worker(address, database_url, sandbox_server.base_url, SAGA_QUEUE)
    try:
        handle = await cancel_invoice(temporal_env.client, db, invoice_id=invoice_id, reason="booked in error", task_queue=SAGA_QUEUE)

        def refund_in_flight() -> bool:
            with Session(db) as session:
                return session.exec(select(Refund).where(Refund.payment_id == settled, Refund.kind == "refund", Refund.status == "pending")).first() is not None

        await eventually(refund_in_flight)
        stop_worker(first_worker)  # SIGKILL while Gravity is processing the refund
        second_worker = spawn_worker(address, database_url, sandbox_server.base_url, SAGA_QUEUE)
        try:
            outcome = await handle.result()
        finally:
            stop_worker(second_worker)
    finally:
        stop_worker(first_worker)

    assert outcome.status == "void"
    given = {g.payment_id: (g.kind, g.amount_cents) for g in outcome.compensated}
    assert given == {settled: ("refund", 3_000), second: ("void", 3_000), third: ("void", 4_000)}
    for payment_id in (settled, second, third):
        done = [r for r in refunds_of(db, payment_id) if r.status == "done"]
        assert len(done) == 1, refunds_of(db, payment_id)
        assert payment(db, payment_id).refunded_cents == payment(db, payment_id).approved_cents
    rows = sandbox.transactions()
    assert sum(1 for r in rows if r["transaction_type"] in ("CreditReturn", "Void")) == 3  # exactly once each
    final = invoice(db, invoice_id)
    assert (final.status, final.paid_cents) == ("void", 0)
    assert_books_match_gateway(db, sandbox)
    assert_clearing_matches_gateway(db, sandbox)
    with Session(db) as session:
        from books.ledger import account_balances

        balances = account_balances(session)
    assert balances.get("accounts_receivable", 0) == 0 and balances.get("fee_revenue", 0) == 0 and balances.get("refunds", 0) == 0


async def test_cancellation_waits_for_a_refund_still_retrying_and_no_one_collects_meanwhile(
    db: Engine,
    sandbox: SandboxControl,
    sandbox_server: SandboxServer,
    temporal_env: WorkflowEnvironment,
    gateways: GatewayDirectory,
    clinic: Clinic,
    ready: Receiver,
) -> None:
    """Chaos seed 7: the saga gave up in under a second while a customer refund on the same invoice
    was still retrying, so the invoice stayed open and a counter payment collected it again."""
    invoice_id = counter_invoice(db, clinic, 10_000)
    paid = await pay_at_counter(temporal_env, db, gateways, sandbox, clinic, invoice_id)
    sandbox.settle(OID)
    sandbox.inject_fault("tokenizedRefund", "slow", count=1, delay_s=3)  # the partial refund is in flight a while
    partial = asyncio.create_task(refund(temporal_env, db, paid, request_id="partial", amount_cents=3_000))

    def refund_pending() -> bool:
        return not sandbox.faults() and any(r.status in ("pending", "unknown") for r in refunds_of(db, paid))

    await eventually(refund_pending)
    handle = await cancel_invoice(temporal_env.client, db, invoice_id=invoice_id, reason="booked in error", task_queue=TASK_QUEUE)
    await eventually(lambda: invoice(db, invoice_id).cancel_requested_at is not None)
    with pytest.raises(PaymentRefused, match="being cancelled"):
        await start_at_counter(temporal_env, db, gateways, clinic, invoice_id=invoice_id, device_name="counter-2")

    outcome = await handle.result()
    assert (await partial).amount_cents == 3_000
    assert outcome.status == "void"
    final = invoice(db, invoice_id)
    assert (final.status, final.paid_cents) == ("void", 0)
    assert payment(db, paid).refunded_cents == 10_000
    assert [p.id for p in payments_of(db, invoice_id)] == [paid]
    assert_books_match_gateway(db, sandbox)
    assert_clearing_matches_gateway(db, sandbox)
