"""Cancelling an invoice with three card payments: every payment is given back exactly once, even
when the gateway fails and the worker is killed half-way through."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio.testing import WorkflowEnvironment

from activities.gateways import GatewayDirectory
from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from models.billing import Refund
from operations.payments import cancel_invoice
from tests.payments.conftest import Receiver
from tests.payments.helpers import (
    OID,
    assert_clearing_matches_gateway,
    counter_invoice,
    eventually,
    invoice,
    pay_at_counter,
    payment,
    refunds_of,
    spawn_worker,
    stop_worker,
)
from tests.subscriptions.helpers import assert_books_match_gateway
from tests.support.clinic import Clinic

SAGA_QUEUE = "billing-saga-kill"



async def test_cancellation_survives_gateway_faults_and_a_killed_worker(
    db: Engine, database_url: str, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment,
    gateways: GatewayDirectory, clinic: Clinic, ready: Receiver,
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
        from models.ledger import account_balances

        balances = account_balances(session)
    assert balances.get("accounts_receivable", 0) == 0 and balances.get("fee_revenue", 0) == 0 and balances.get("refunds", 0) == 0
