"""The business counters move when results are recorded: a decline, its recovery on the retry, the
next cycle's charge, and a refund - read back through an in-memory metric reader.

The subscription runs on our own traced worker with time skipping (its two-month term passes in
seconds); the refund goes through the same `Refunder` the activities use, against the real
database and sandbox.
"""

from __future__ import annotations

import io
import logging
from datetime import date

from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio.client import Client
from temporalio.worker import Worker

from activities.refunds import Refunder
from foundation.settings import SANDBOX_OID, SANDBOX_TOKEN
from foundation.telemetry import configure_logging
from gravity.directory import GatewayDirectory
from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from models.billing import Payment
from operations.enrollment import EnrollRequest, enroll
from tests.support.cards import save_card
from tests.support.clinic import make_clinic
from tests.telemetry.conftest import TELEMETRY_QUEUE, Captured

COUNTERS = {
    "approved": ("billing.charges", {"outcome": "approved", "channel": "card_on_file"}),
    "declined": ("billing.charges", {"outcome": "declined", "channel": "card_on_file"}),
    "insufficient_funds": ("billing.declines", {"reason": "insufficient_funds"}),
    "recoveries": ("billing.recoveries", {}),
    "refunds": ("billing.refunds", {"kind": "refund", "status": "done"}),
}


def _read(captured: Captured) -> dict[str, int]:
    return {key: captured.counter(name, **attributes) for key, (name, attributes) in COUNTERS.items()}


async def test_charges_declines_recoveries_and_refunds_are_counted(
    db: Engine, captured: Captured, traced_client: Client, traced_worker: Worker, sandbox: SandboxControl, sandbox_server: SandboxServer
) -> None:
    before = _read(captured)
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = configure_logging("INFO", stream=stream)
    try:
        clinic = make_clinic(db, term_months=2, auto_renew=False)
        _, card_ref = await save_card(db, sandbox_server, clinic)
        sandbox.decline_next(card_ref, "insufficient_funds", count=1)
        enrollment = await enroll(
            traced_client,
            db,
            EnrollRequest(clinic.client_id, clinic.pet_id, clinic.plan_id, clinic.location_id, date(2027, 3, 10)),
            task_queue=TELEMETRY_QUEUE,
        )
        assert await traced_client.get_workflow_handle(enrollment.workflow_id).result() == "ended"

        with Session(db) as session:
            payment = session.exec(select(Payment).where(Payment.subscription_id == enrollment.subscription_id, Payment.status == "approved")).first()
        assert payment is not None
        gateways = GatewayDirectory(sandbox_server.base_url, {SANDBOX_OID: SANDBOX_TOKEN}, timeout=5.0)
        try:
            refund = await Refunder(db, gateways).give_back(
                payment_id=payment.id, amount_cents=500, kind="refund", attempt_key=f"refund:telemetry:{payment.id}", reason="goodwill"
            )
        finally:
            await gateways.aclose()
        assert refund.status == "done"
    finally:
        root.removeHandler(handler)
        root.setLevel(level)

    after = _read(captured)
    delta = {key: after[key] - before[key] for key in COUNTERS}
    # Cycle 1: declined, then approved on the retry (a recovery); cycle 2: approved at once.
    assert delta == {"approved": 2, "declined": 1, "insufficient_funds": 1, "recoveries": 1, "refunds": 1}
    assert captured.counter("billing.charges") - sum(before[k] for k in ("approved", "declined")) >= 3

    # Every charge logged one line carrying its workflow, subscription and invoice ids (from the
    # activity and the log context), and nothing of the card.
    lines = [line for line in stream.getvalue().splitlines() if "charge attempt" in line]
    assert len(lines) == 3, stream.getvalue()
    sub_id = enrollment.subscription_id
    for line in lines:
        assert f"workflow_id={enrollment.workflow_id}" in line and f"subscription_id={sub_id}" in line, line
        assert "invoice_id=" in line and "activity=charge_cycle" in line and "trace_id=" in line, line
        assert card_ref not in line and "4111111111111111" not in line
    assert "charge attempt 1 declined (insufficient_funds)" in lines[0]
