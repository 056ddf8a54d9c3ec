"""A subscription's timeline after a decline and its retries, on the real worker, sandbox and database."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from operations.timeline import subscription_timeline
from tests.subscriptions.helpers import invoices, start, subscription_id_of
from tests.support.cards import save_card
from tests.support.clinic import make_clinic


async def test_timeline_shows_the_declines_the_retries_and_the_recovery_in_order(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    clinic = make_clinic(db, term_months=1, auto_renew=False)
    _, card_ref = await save_card(db, sandbox_server, clinic)
    sandbox.decline_next(card_ref, "insufficient_funds", count=2)
    handle = await start(temporal_env, db, clinic, date(2027, 3, 10))
    assert await handle.result() == "ended"
    sub_id = subscription_id_of(handle)
    first = invoices(db, sub_id)[0]

    timeline = subscription_timeline(db, sub_id)

    items = timeline.items
    assert [item.at for item in items] == sorted(item.at for item in items)  # oldest first
    assert [item.period_start for item in items if item.kind == "cycle"] == [i.period_start for i in invoices(db, sub_id)]
    attempts = [(i.attempt, i.status, i.reason) for i in items if i.kind == "charge_attempt" and i.invoice_id == first.id]
    assert attempts == [(1, "declined", "insufficient_funds"), (2, "declined", "insufficient_funds"), (3, "approved", None)]
    changes = [i.event_type for i in items if i.kind == "status_change"]
    assert changes.count("payment.retry_scheduled") == 2 and "subscription.recovered" in changes
    assert changes.index("subscription.recovered") > changes.index("payment.retry_scheduled")
    kinds = [i.kind for i in items]
    recovered = next(n for n, i in enumerate(items) if i.event_type == "subscription.recovered")
    assert max(n for n, i in enumerate(items) if i.kind == "charge_attempt" and i.status == "declined") < recovered
    assert {"invoice", "event"} <= set(kinds)
    assert any(i.kind == "event" and i.event_type == "payment.failed" for i in items)
    assert {i.workflow_id for i in items} == {f"subscription:{sub_id}"} == {timeline.workflow_id}
    assert all(i.run_id is None for i in items)  # the database records no run ids
