"""Refunds and deposit refunds are workflows: a worker killed while Gravity is giving the money back
leaves the movement to the next worker, which looks the refund up instead of sending it twice, and
never leaves a reservation behind."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio.testing import WorkflowEnvironment

from foundation.contracts import RefundResult
from gravity.directory import GatewayDirectory
from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from models.billing import Deposit, Refund
from operations.payments import refund_deposit, refund_payment
from tests.payments.conftest import Receiver
from tests.payments.helpers import (
    assert_clearing_matches_gateway,
    card_deposit,
    counter_invoice,
    deposit_refund,
    eventually,
    pay_at_counter,
    payment,
    refund,
    refunds_of,
    spawn_worker,
    stop_worker,
)
from tests.subscriptions.helpers import assert_books_match_gateway
from tests.support.cards import save_card
from tests.support.clinic import Clinic

KILL_QUEUE = "billing-refund-kill"


async def test_refunds_survive_a_worker_killed_while_gravity_gives_the_money_back(
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
    payment_id = await pay_at_counter(temporal_env, db, gateways, sandbox, clinic, invoice_id)
    card_id, _ = await save_card(db, sandbox_server, clinic)
    taken = await card_deposit(temporal_env, db, client_id=clinic.client_id, card_id=card_id, amount_cents=5_000, request_id="dep-1")
    assert taken.status == "approved" and taken.deposit_id is not None

    sandbox.inject_fault("tokenizedRefund", "slow", count=1, delay_s=3)  # the part refund hangs at Gravity...
    sandbox.inject_fault("void", "slow", count=1, delay_s=3)  # ...and so does the deposit's void
    address = temporal_env.client.service_client.config.target_host
    first_worker = spawn_worker(address, database_url, sandbox_server.base_url, KILL_QUEUE)
    try:
        with temporal_env.with_time_skipping_disabled():
            part = await refund_payment(
                temporal_env.client, db, payment_id=payment_id, amount_cents=3_000, request_id="r-1", reason="goodwill", task_queue=KILL_QUEUE, wait_s=0
            )
            unused = await refund_deposit(temporal_env.client, db, deposit_id=taken.deposit_id, request_id="back-1", task_queue=KILL_QUEUE, wait_s=0)
        assert part.result is None and unused.result is None  # still running: the answer would be a 202

        def both_in_flight() -> bool:
            with Session(db) as session:
                return len(session.exec(select(Refund).where(Refund.status == "pending")).all()) == 2

        await eventually(both_in_flight)
        stop_worker(first_worker)  # SIGKILL while Gravity is processing both
        with Session(db) as session:
            assert session.get_one(Deposit, taken.deposit_id).remaining_cents == 0  # reserved, not yet given
        second_worker = spawn_worker(address, database_url, sandbox_server.base_url, KILL_QUEUE)
        try:
            given: RefundResult = await temporal_env.client.get_workflow_handle(part.workflow_id, result_type=RefundResult).result()
            back: RefundResult = await temporal_env.client.get_workflow_handle(unused.workflow_id, result_type=RefundResult).result()
        finally:
            stop_worker(second_worker)
    finally:
        stop_worker(first_worker)

    assert (given.status, given.kind, given.amount_cents) == ("done", "refund", 3_000)
    assert (back.status, back.kind, back.amount_cents) == ("done", "void", 5_000)
    assert [(r.kind, r.amount_cents, r.status) for r in refunds_of(db, payment_id)] == [("refund", 3_000, "done")]
    assert payment(db, payment_id).refunded_cents == 3_000
    assert [(r.kind, r.status) for r in refunds_of(db, taken.payment_id)] == [("void", "done")]
    with Session(db) as session:
        credit = session.get(Deposit, taken.deposit_id)
        assert credit is not None and (credit.remaining_cents, credit.status) == (0, "refunded")
        assert session.exec(select(Refund).where(Refund.status == "pending")).all() == []
    rows = sandbox.transactions()
    assert sum(1 for r in rows if r["transaction_type"] in ("CreditReturn", "Void")) == 2  # exactly once each
    # The same request ids answer the same results, from the books (no second movement).
    assert await refund(temporal_env, db, payment_id, amount_cents=3_000, request_id="r-1") == given
    assert await deposit_refund(temporal_env, db, taken.deposit_id, request_id="back-1") == back
    assert_books_match_gateway(db, sandbox)
    assert_clearing_matches_gateway(db, sandbox)
