"""Declines, retries on the dunning schedule, card updates, suspension and reactivation."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import date, time, timedelta
from typing import Any

import pendulum
from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from foundation.contracts import SubscriptionInput
from foundation.converter import data_converter
from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from models.outbox import OutboxEvent
from operations import subscriptions as commands
from tests.subscriptions.helpers import (
    TASK_QUEUE,
    assert_books_match_gateway,
    events,
    invoices,
    local_today,
    payments,
    start,
    start_held,
    subscription_id_of,
    until_view,
)
from tests.support.cards import save_card
from tests.support.clinic import make_clinic
from workflows.dunning import retry_instant
from workflows.subscription import SubscriptionWorkflow

TWO_MONTH_TERM: dict[str, Any] = {"term_months": 2, "auto_renew": False}
TZ = "America/Chicago"  # make_clinic's zone


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


async def test_a_soft_decline_after_a_late_card_update_waits_for_the_next_retry_day(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    """Retries 1-3 (days 3, 7, 11) lie in the past when the new card arrives on day 12: its soft
    decline is retried on day 15, not three times back to back."""
    clinic = make_clinic(db, **TWO_MONTH_TERM)
    _, card_ref = await save_card(db, sandbox_server, clinic)
    new_card, new_ref = await save_card(db, sandbox_server, clinic, number="5555555555554444", default=False)
    sandbox.decline_next(card_ref, "expired_card", count=1)
    sandbox.decline_next(new_ref, "insufficient_funds", count=3)
    handle = await start_held(temporal_env, db, clinic, local_today(TZ) + timedelta(days=1))
    sub_id = subscription_id_of(handle)
    await temporal_env.fast_forward(handle, timedelta(days=13, hours=12))

    assert (await commands.change_card(temporal_env.client, sub_id, new_card)).accepted
    await temporal_env.fast_forward(handle, timedelta(hours=1))

    first = invoices(db, sub_id)[0]
    tries = [(p.attempt, p.status, p.decline_class) for p in payments(db, sub_id) if p.invoice_id == first.id]
    assert tries == [(1, "declined", "hard"), (2, "declined", "soft")]
    (waiting,) = (await commands.describe(temporal_env.client, sub_id)).open_invoices
    assert waiting.next_attempt_at is not None
    assert first.due_at is not None
    fourth_retry_day = retry_instant(first.due_at, 15, tz=TZ)
    assert fourth_retry_day <= waiting.next_attempt_at < fourth_retry_day + timedelta(minutes=15)
    await commands.cancel(temporal_env.client, sub_id, mode="now")
    assert_books_match_gateway(db, sandbox)


async def test_a_cohort_s_retries_are_spread_over_the_herd_window(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    retry_moments = []
    for _ in range(3):
        clinic = make_clinic(db, **TWO_MONTH_TERM)
        _, card_ref = await save_card(db, sandbox_server, clinic)
        sandbox.decline_next(card_ref, "insufficient_funds", count=1)
        handle = await start_held(temporal_env, db, clinic, local_today(TZ) - timedelta(days=1))  # charged at once
        sub_id = subscription_id_of(handle)
        view = await until_view(temporal_env, sub_id, lambda v: any(i.next_attempt_at for i in v.open_invoices), seconds=30)
        (waiting,) = view.open_invoices
        assert waiting.next_attempt_at is not None
        retry_moments.append(pendulum.instance(waiting.next_attempt_at).in_timezone(TZ))
        await commands.cancel(temporal_env.client, sub_id, mode="now")
    assert all(time(9, 0) <= m.time() < time(9, 15) for m in retry_moments)
    assert len({m.time() for m in retry_moments}) > 1  # not the whole cohort at 09:00:00
    assert_books_match_gateway(db, sandbox)


async def test_a_run_that_starts_past_due_with_nothing_open_recovers(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    """What a run continued as new receives when the last open invoice was paid elsewhere (at the
    counter) while the previous run was closing: the reactivation check must not be lost."""
    clinic = make_clinic(db, **TWO_MONTH_TERM)
    await save_card(db, sandbox_server, clinic)
    handle = await start_held(temporal_env, db, clinic, local_today(TZ) + timedelta(days=3))
    sub_id = subscription_id_of(handle)
    started = (await handle.fetch_history()).events[0].workflow_execution_started_event_attributes
    (enrolled,) = await data_converter.decode(started.input.payloads, [SubscriptionInput])
    carried = SubscriptionInput(enrolled.setup, replace(enrolled.state, status="past_due", open_invoices=[]))
    with temporal_env.with_time_skipping_disabled():
        next_run = await temporal_env.client.start_workflow(SubscriptionWorkflow.run, carried, id=f"next-run:{sub_id}", task_queue=TASK_QUEUE)
    try:
        for _ in range(100):
            if "subscription.recovered" in events(db, sub_id):
                break
            await asyncio.sleep(0.1)
        assert (await next_run.query(SubscriptionWorkflow.describe)).status == "active"
        assert "subscription.recovered" in events(db, sub_id)
    finally:
        await next_run.terminate("test over")
        await commands.cancel(temporal_env.client, sub_id, mode="now")


async def test_a_subscription_without_a_usable_card_is_suspended_after_two_cycles_and_a_new_card_reactivates_it(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    clinic = make_clinic(db, term_months=6, auto_renew=False)
    _, card_ref = await save_card(db, sandbox_server, clinic)
    new_card, _ = await save_card(db, sandbox_server, clinic, number="5555555555554444", default=False)
    sandbox.decline_next(card_ref, "expired_card", count=1)  # a hard decline disables the card
    handle = await start_held(temporal_env, db, clinic, local_today(TZ) + timedelta(days=2))
    sub_id = subscription_id_of(handle)
    await temporal_env.fast_forward(handle, timedelta(days=40))  # cycle 0 hard-declined, cycle 1 finds no card

    view = await commands.describe(temporal_env.client, sub_id)
    assert view.status == "suspended"
    assert [i.waiting_for for i in view.open_invoices] == ["new_card", "new_card"]
    kinds = events(db, sub_id)
    assert kinds.index("subscription.suspended") < len(kinds) - 1 and kinds[-1] == "payment.card_needed"
    assert "2 cycles" in _payload(db, sub_id, "subscription.suspended")["detail"]
    await temporal_env.fast_forward(handle, timedelta(days=31))
    assert len(invoices(db, sub_id)) == 2  # no cycle is billed while suspended

    await commands.change_card(temporal_env.client, sub_id, new_card)
    await temporal_env.fast_forward(handle, timedelta(hours=1))
    view = await commands.describe(temporal_env.client, sub_id)
    assert (view.status, view.open_invoices) == ("active", [])
    assert [i.status for i in invoices(db, sub_id)] == ["paid", "paid"]
    assert "subscription.reactivated" in events(db, sub_id)
    await commands.cancel(temporal_env.client, sub_id, mode="now", reason="test over")
    assert_books_match_gateway(db, sandbox)


def _payload(engine: Engine, subscription_id: str, event_type: str) -> dict[str, Any]:
    with Session(engine) as session:
        query = select(OutboxEvent).where(OutboxEvent.stream == f"subscription:{subscription_id}", OutboxEvent.type == event_type)
        return dict(session.exec(query).one().payload)
