"""Declines, retries on the dunning schedule, card updates, suspension and reactivation."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import Engine
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from operations import subscriptions as commands
from tests.subscriptions.helpers import (
    assert_books_match_gateway,
    events,
    invoices,
    payments,
    start,
    start_held,
    subscription_id_of,
)
from tests.support.cards import save_card
from tests.support.clinic import make_clinic

TWO_MONTH_TERM = {"term_months": 2, "auto_renew": False}


async def test_soft_decline_is_recovered_on_the_second_retry(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    clinic = make_clinic(db, **TWO_MONTH_TERM)
    _, card_ref = await save_card(db, sandbox_server, clinic)
    sandbox.decline_next(card_ref, "insufficient_funds", count=2)
    handle = await start(temporal_env, db, clinic, date(2027, 3, 10))

    assert await handle.result() == "ended"

    sub_id = subscription_id_of(handle)
    attempts = [(p.attempt, p.status, p.decline_reason) for p in payments(db, sub_id) if p.invoice_id == invoices(db, sub_id)[0].id]
    assert attempts == [(1, "declined", "insufficient_funds"), (2, "declined", "insufficient_funds"), (3, "approved", None)]
    assert [i.status for i in invoices(db, sub_id)] == ["paid", "paid"]
    kinds = events(db, sub_id)
    assert kinds.count("payment.failed") == 2 and kinds.count("payment.retry_scheduled") == 2
    assert "subscription.recovered" in kinds and "subscription.suspended" not in kinds
    assert_books_match_gateway(db, sandbox)


async def test_hard_decline_waits_for_a_new_card_and_the_update_retries_at_once(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    clinic = make_clinic(db, **TWO_MONTH_TERM)
    _, card_ref = await save_card(db, sandbox_server, clinic)
    new_card, _ = await save_card(db, sandbox_server, clinic, number="5555555555554444", default=False)
    sandbox.decline_next(card_ref, "expired_card", count=1)
    handle = await start_held(temporal_env, db, clinic, date.today() + timedelta(days=3))
    await temporal_env.fast_forward(handle, timedelta(days=10))

    view = await commands.describe(temporal_env.client, subscription_id_of(handle))
    assert view.status == "past_due"
    assert [i.waiting_for for i in view.open_invoices] == ["new_card"]
    assert len(payments(db, subscription_id_of(handle))) == 1  # no retry of a hard decline

    result = await commands.change_card(temporal_env.client, subscription_id_of(handle), new_card)
    assert result.accepted
    await temporal_env.fast_forward(handle)
    assert await handle.result() == "ended"

    sub_id = subscription_id_of(handle)
    first = invoices(db, sub_id)[0]
    tries = [(p.attempt, p.status, p.decline_class) for p in payments(db, sub_id) if p.invoice_id == first.id]
    assert tries == [(1, "declined", "hard"), (2, "approved", None)]
    assert first.status == "paid"
    assert "payment.card_needed" in events(db, sub_id) and "subscription.card_changed" in events(db, sub_id)
    assert_books_match_gateway(db, sandbox)


async def test_exhausted_dunning_suspends_and_payment_reactivates(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    clinic = make_clinic(db, term_months=3, auto_renew=False)
    _, card_ref = await save_card(db, sandbox_server, clinic)
    new_card, _ = await save_card(db, sandbox_server, clinic, number="5555555555554444", default=False)
    sandbox.decline_next(card_ref, "do_not_honor", count=5)  # the first attempt and all four retries
    handle = await start_held(temporal_env, db, clinic, date.today() + timedelta(days=2))
    sub_id = subscription_id_of(handle)
    await temporal_env.fast_forward(handle, timedelta(days=20))

    view = await commands.describe(temporal_env.client, sub_id)
    assert view.status == "suspended"
    assert len(payments(db, sub_id)) == 5

    await temporal_env.fast_forward(handle, timedelta(days=45))  # a due date passes while suspended
    assert len(invoices(db, sub_id)) == 1  # no new cycle is billed while suspended

    await commands.change_card(temporal_env.client, sub_id, new_card)
    await temporal_env.fast_forward(handle, timedelta(hours=1))
    view = await commands.describe(temporal_env.client, sub_id)
    assert view.status == "active"
    assert invoices(db, sub_id)[0].status == "paid"
    kinds = events(db, sub_id)
    assert kinds.index("subscription.suspended") < kinds.index("subscription.reactivated")
    await commands.cancel(temporal_env.client, sub_id, mode="now", reason="test over")
    assert_books_match_gateway(db, sandbox)
