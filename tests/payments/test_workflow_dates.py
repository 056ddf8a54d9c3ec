"""The front desk's money movements carry their workflow's time: a card deposit, a terminal payment,
a refund and an invoice cancellation whose workflows live 400 days ahead book on that day, not today."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import TimeSkipper, TimeSkippingConfig, WorkflowEnvironment
from temporalio.worker import Worker

from books.ledger import is_balanced
from foundation.contracts import CardDepositRequest, InvoiceCancellationInput, RefundRequest, TerminalPaymentInput
from foundation.ids import cancellation_workflow_id, event_id_for, invoice_issued_event_key, terminal_workflow_id
from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from models.billing import Invoice, Payment, Refund
from models.ledger import LedgerTransaction
from models.outbox import OutboxEvent
from operations.payments import CounterLine, create_counter_invoice_for, terminal_attempt
from tests.payments.conftest import Receiver
from tests.payments.helpers import DEVICE, OID, QUICK, TASK_QUEUE, counter_invoice, invoice, wait_for_state
from tests.support.cards import save_card
from tests.support.clinic import Clinic
from tests.support.later import Later, LaterWorkflow

AHEAD = timedelta(days=400)
CLOSE = timedelta(hours=2)  # the rows are written seconds after the workflow's clock read AHEAD
LATER_QUEUE = "later-at-the-desk"


class Desk:
    """Starts each movement's workflow as the child of one that first sleeps AHEAD in simulated time;
    the child inherits that clock but not the skipping, so a terminal waits for its tap in real time."""

    def __init__(self, env: WorkflowEnvironment) -> None:
        self._skipper = TimeSkipper(env.client, config=TimeSkippingConfig(disable_propagation=True))

    async def start(self, workflow: str, arg: Any, child_id: str) -> WorkflowHandle:
        later = Later(AHEAD.total_seconds(), workflow, arg, child_id, TASK_QUEUE)
        return await self._skipper.client.start_workflow(LaterWorkflow.run, later, id=f"later:{child_id}", task_queue=LATER_QUEUE)

    async def run(self, workflow: str, arg: Any, child_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await (await self.start(workflow, arg, child_id)).result()
        return result

    async def pay_at_counter(self, env: WorkflowEnvironment, sandbox: SandboxControl, clinic: Clinic, invoice_id: str) -> str:
        attempt_key, payment_id = terminal_attempt(uuid.uuid4().hex)
        request = TerminalPaymentInput(payment_id, attempt_key, clinic.location_id, DEVICE, invoice_id=invoice_id, timing=QUICK)
        parent = await self.start("TerminalPayment", request, terminal_workflow_id(payment_id))
        child = env.client.get_workflow_handle(terminal_workflow_id(payment_id))
        await _started(child)
        await wait_for_state(child, "waiting_at_counter")
        sandbox.present_card(OID, DEVICE)
        assert (await parent.result())["status"] == "approved"
        return payment_id


async def _started(handle: WorkflowHandle, timeout_s: float = 30.0) -> None:
    """Wait until the parent has started its child."""
    for _ in range(int(timeout_s * 10)):
        try:
            await handle.describe()
            return
        except RPCError:
            await asyncio.sleep(0.1)
    raise AssertionError(f"{handle.id} never started")


def _dated(engine: Engine, payment_ids: set[str]) -> list[tuple[str, datetime | None]]:
    """Every payment, refund and ledger transaction row of these payments, with its creation time."""
    with Session(engine) as session:
        rows: list[tuple[str, datetime | None]] = []
        rows += [(f"payment {p.id}", p.created_at) for p in session.exec(select(Payment).where(col(Payment.id).in_(payment_ids)))]
        rows += [(f"refund {r.id} {r.kind}", r.created_at) for r in session.exec(select(Refund).where(col(Refund.payment_id).in_(payment_ids)))]
        posted = session.exec(select(LedgerTransaction).where(col(LedgerTransaction.payment_id).in_(payment_ids)))
        rows += [(f"ledger {t.reference}", t.created_at) for t in posted]
        return rows


async def test_front_desk_movements_are_dated_by_their_workflows_time(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, clinic: Clinic, ready: Receiver
) -> None:
    desk = Desk(temporal_env)
    card_id, _ = await save_card(db, sandbox_server, clinic)
    async with Worker(temporal_env.client, task_queue=LATER_QUEUE, workflows=[LaterWorkflow]):
        deposited = await desk.run("CardDeposit", CardDepositRequest(clinic.client_id, card_id, 5_000, "dated-dep"), f"dated-dep-{uuid.uuid4().hex}")
        assert deposited["status"] == "approved" and deposited["deposit_id"] is not None
        back = await desk.run("Refund", RefundRequest("dated-dep-back", deposit_id=deposited["deposit_id"]), f"dated-dep-back-{uuid.uuid4().hex}")
        assert back["status"] == "done"

        refunded = await desk.pay_at_counter(temporal_env, sandbox, clinic, counter_invoice(db, clinic, 9_000))
        part = await desk.run("Refund", RefundRequest("dated-refund", payment_id=refunded, amount_cents=4_000), f"dated-refund-{uuid.uuid4().hex}")
        assert (part["status"], part["kind"]) == ("done", "refund")

        cancelled_invoice = counter_invoice(db, clinic, 7_000)
        cancelled = await desk.pay_at_counter(temporal_env, sandbox, clinic, cancelled_invoice)
        await desk.run("InvoiceCancellation", InvoiceCancellationInput(cancelled_invoice, "booked in error"), cancellation_workflow_id(cancelled_invoice))
        assert invoice(db, cancelled_invoice).status == "void"

    ahead = datetime.now(UTC) + AHEAD
    rows = _dated(db, {deposited["payment_id"], refunded, cancelled})
    assert {label.split(" ")[0] for label, _ in rows} == {"payment", "refund", "ledger"} and len(rows) >= 9, rows
    undated = [(label, at) for label, at in rows if at is None or abs(at - ahead) > CLOSE]
    assert undated == [], f"not dated by the workflows' time, about {ahead.isoformat()}"
    with Session(db) as session:
        assert is_balanced(session)


def test_a_counter_invoice_is_dated_at_the_time_it_is_given(db: Engine, clinic: Clinic) -> None:
    """The demo's counter visit happens on a day of its simulated year: the invoice, its ledger posting
    and its event carry that day; without a time they carry the database's now(), as the API's do."""
    visit = datetime(2027, 3, 10, 15, 0, tzinfo=UTC)
    dated = create_counter_invoice_for(db, client_id=clinic.client_id, location_id=clinic.location_id, lines=[CounterLine("Exam", 8_500)], at=visit)
    undated = create_counter_invoice_for(db, client_id=clinic.client_id, location_id=clinic.location_id, lines=[CounterLine("Exam", 8_500)])
    with Session(db) as session:
        for invoice_id, expected in ((dated, visit), (undated, datetime.now(UTC))):
            rows = [session.get(Invoice, invoice_id).created_at]  # type: ignore[union-attr]
            rows += [t.created_at for t in session.exec(select(LedgerTransaction).where(LedgerTransaction.invoice_id == invoice_id))]
            rows += [e.created_at for e in session.exec(select(OutboxEvent).where(OutboxEvent.event_id == event_id_for(invoice_issued_event_key(invoice_id))))]
            assert len(rows) == 3 and all(at is not None and abs(at - expected) < CLOSE for at in rows), (invoice_id, rows)
