"""Commands on a running subscription: cancel with settlement, pause/resume, plan change, the
location's recurring-payment setting, and refused commands changing nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import pendulum
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio.client import WorkflowUpdateStage
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from activities.subscription_commands import SubscriptionCommandActivities
from foundation.contracts import CancelRequest, PlanChange, PlanChangeInput
from foundation.converter import data_converter
from foundation.scopes import Actor
from foundation.settings import SANDBOX_OID, SANDBOX_TOKEN
from gravity.directory import GatewayDirectory
from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from models.billing import Deposit, Invoice, Refund
from models.clinic import Location
from models.db import session_scope
from models.plans import HealthPlan, terms_of
from models.subscriptions import Subscription
from operations import subscriptions as commands
from stack.search_attributes import PLAN_ID
from tests.subscriptions.helpers import (
    assert_books_match_gateway,
    events,
    invoices,
    local_today,
    payments,
    start_held,
    subscription_id_of,
)
from tests.support.cards import save_card
from tests.support.clinic import make_clinic
from workflows.proration import prorate_change, unused_refund_cents
from workflows.subscription import SubscriptionWorkflow

TZ = "America/Chicago"
TASK_QUEUE = "billing-tests"


async def test_cancel_mid_period_refunds_the_unused_part(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    clinic = make_clinic(db, timezone=TZ, price_cents=4_500, cancellation_policy="refund_unused")
    await save_card(db, sandbox_server, clinic)
    started = local_today(TZ) - timedelta(days=1)  # due yesterday: billed at once
    handle = await start_held(temporal_env, db, clinic, started)
    sub_id = subscription_id_of(handle)
    await temporal_env.fast_forward(handle, timedelta(days=10))
    cancel_day = pendulum.instance(await temporal_env.get_current_time(handle)).in_timezone(TZ).date()

    result = await commands.cancel(temporal_env.client, sub_id, mode="now", reason="moving away")
    assert result.status == "cancelled"
    assert await handle.result() == "cancelled"

    first = invoices(db, sub_id)[0]
    assert first.status == "paid" and first.period_start and first.period_end
    with Session(db) as session:
        refunds = list(session.exec(select(Refund)))
    expected = unused_refund_cents(4_500, period_start=first.period_start, period_end=first.period_end, cancel_date=cancel_day)
    assert [(r.kind, r.status, r.amount_cents) for r in refunds] == [("refund", "done", expected)]
    assert 0 < expected < 4_500
    assert "subscription.cancelled" in events(db, sub_id)
    assert_books_match_gateway(db, sandbox)


async def test_pause_skips_cycles_and_resume_bills_the_next_one(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    clinic = make_clinic(db, timezone=TZ)
    await save_card(db, sandbox_server, clinic)
    handle = await start_held(temporal_env, db, clinic, local_today(TZ) - timedelta(days=1))
    sub_id = subscription_id_of(handle)
    await temporal_env.fast_forward(handle, timedelta(days=2))
    assert (await commands.pause(temporal_env.client, sub_id)).status == "paused"
    with pytest.raises(commands.CommandRefused, match="only an active subscription can be paused"):
        await commands.pause(temporal_env.client, sub_id)

    await temporal_env.fast_forward(handle, timedelta(days=62))  # two due dates pass while paused
    assert len(invoices(db, sub_id)) == 1

    assert (await commands.resume(temporal_env.client, sub_id)).status == "active"
    await temporal_env.fast_forward(handle, timedelta(days=31))
    billed = invoices(db, sub_id)
    assert len(billed) == 2 and [i.status for i in billed] == ["paid", "paid"]
    assert _month_number(billed[1].period_start) - _month_number(billed[0].period_start) == 3
    await commands.cancel(temporal_env.client, sub_id, mode="now")
    assert_books_match_gateway(db, sandbox)


async def test_plan_change_prorates_the_rest_of_the_period(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    clinic = make_clinic(db, timezone=TZ, price_cents=3_000)
    with session_scope(db) as session:
        session.add(HealthPlan(id="plan_premium", location_id=clinic.location_id, name="Premium", price_cents=6_000))
    await save_card(db, sandbox_server, clinic)
    handle = await start_held(temporal_env, db, clinic, local_today(TZ) - timedelta(days=1))
    sub_id = subscription_id_of(handle)
    await temporal_env.fast_forward(handle, timedelta(days=9))
    change_day = pendulum.instance(await temporal_env.get_current_time(handle)).in_timezone(TZ).date()

    result = await commands.change_plan(temporal_env.client, sub_id, "plan_premium")
    assert result.accepted
    # Finance lists subscriptions by plan: the attribute follows the change.
    assert (await handle.describe()).typed_search_attributes.get(PLAN_ID) == "plan_premium"

    first = invoices(db, sub_id)[0]
    assert first.period_start and first.period_end
    expected = prorate_change(3_000, 6_000, period_start=first.period_start, period_end=first.period_end, change_date=change_day, policy="prorate")
    with Session(db) as session:
        proration = session.exec(select(Invoice).where(Invoice.kind == "proration")).one()
    assert proration.total_cents == expected.net_cents > 0
    assert proration.status == "paid"
    await temporal_env.fast_forward(handle, timedelta(days=25))
    assert invoices(db, sub_id)[-1].total_cents == 6_000  # the next cycle bills the new price
    with pytest.raises(commands.CommandRefused, match="already on plan"):
        await commands.change_plan(temporal_env.client, sub_id, "plan_premium")
    await commands.cancel(temporal_env.client, sub_id, mode="now")
    assert_books_match_gateway(db, sandbox)


async def test_plan_change_on_a_due_day_before_its_charge_settles_nothing_and_bills_the_new_price(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    clinic = make_clinic(db, timezone=TZ, price_cents=3_000)
    with session_scope(db) as session:
        session.add(HealthPlan(id="plan_premium", location_id=clinic.location_id, name="Premium", price_cents=6_000))
    await save_card(db, sandbox_server, clinic)
    handle = await start_held(temporal_env, db, clinic, local_today(TZ) - timedelta(days=1))
    sub_id = subscription_id_of(handle)
    await temporal_env.fast_forward(handle, timedelta(minutes=1))  # the first cycle is charged
    period_end = invoices(db, sub_id)[0].period_end
    assert period_end is not None
    # Half past midnight on the next due day: the paid period is over, the next one not charged yet.
    due_day = pendulum.datetime(period_end.year, period_end.month, period_end.day, 0, 30, tz=TZ)
    await temporal_env.fast_forward(handle, due_day - pendulum.instance(await temporal_env.get_current_time(handle)))
    assert len(invoices(db, sub_id)) == 1

    result = await asyncio.wait_for(commands.change_plan(temporal_env.client, sub_id, "plan_premium"), timeout=30)
    assert (result.accepted, result.message) == (True, "now on plan plan_premium; no proration")
    with Session(db) as session:
        assert session.exec(select(Invoice).where(Invoice.kind == "proration")).all() == []
        assert session.exec(select(Deposit)).all() == []
    await temporal_env.fast_forward(handle, timedelta(hours=12))
    assert [(i.total_cents, i.status) for i in invoices(db, sub_id)] == [(3_000, "paid"), (6_000, "paid")]
    await commands.cancel(temporal_env.client, sub_id, mode="now")
    assert_books_match_gateway(db, sandbox)


async def test_downgrade_becomes_client_credit_applied_to_the_next_invoice(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    clinic = make_clinic(db, timezone=TZ, price_cents=6_000)
    with session_scope(db) as session:
        session.add(HealthPlan(id="plan_basic", location_id=clinic.location_id, name="Basic", price_cents=3_000))
    await save_card(db, sandbox_server, clinic)
    handle = await start_held(temporal_env, db, clinic, local_today(TZ) - timedelta(days=1))
    sub_id = subscription_id_of(handle)
    await temporal_env.fast_forward(handle, timedelta(days=5))
    await commands.change_plan(temporal_env.client, sub_id, "plan_basic")
    with Session(db) as session:
        credit = session.exec(select(Deposit)).one()
    assert credit.amount_cents > 0
    await temporal_env.fast_forward(handle, timedelta(days=30))
    second = invoices(db, sub_id)[1]
    assert second.total_cents == 3_000 and second.status == "paid"
    charged = [p.approved_cents for p in payments(db, sub_id) if p.invoice_id == second.id]
    assert charged == [3_000 - credit.amount_cents]
    await commands.cancel(temporal_env.client, sub_id, mode="now")
    assert_books_match_gateway(db, sandbox)


async def test_location_setting_off_invoices_without_charging_and_on_charges_overdue(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    clinic = make_clinic(db, timezone=TZ)
    await save_card(db, sandbox_server, clinic)
    handle = await start_held(temporal_env, db, clinic, local_today(TZ) + timedelta(days=3))
    sub_id = subscription_id_of(handle)
    await commands.set_recurring_allowed(temporal_env.client, db, clinic.location_id, False, task_queue=TASK_QUEUE)
    await temporal_env.fast_forward(handle, timedelta(days=5))

    assert [i.status for i in invoices(db, sub_id)] == ["open"]
    assert payments(db, sub_id) == []
    assert sandbox.transactions() == [t for t in sandbox.transactions() if t["transaction_type"] != "CreditSale"]
    view = await commands.describe(temporal_env.client, sub_id)
    assert view.status == "past_due" and view.open_invoices[0].waiting_for == "charging_enabled"

    told = await commands.set_recurring_allowed(temporal_env.client, db, clinic.location_id, True, task_queue=TASK_QUEUE)
    assert told == 1
    for _ in range(100):  # the broadcast workflow tells the subscription, which charges at once
        if [i.status for i in invoices(db, sub_id)] == ["paid"]:
            break
        await asyncio.sleep(0.1)
    assert [i.status for i in invoices(db, sub_id)] == ["paid"]
    assert (await commands.describe(temporal_env.client, sub_id)).status == "active"
    await commands.cancel(temporal_env.client, sub_id, mode="now")
    assert_books_match_gateway(db, sandbox)


async def test_refused_commands_change_nothing(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    clinic = make_clinic(db, timezone=TZ)
    await save_card(db, sandbox_server, clinic)
    other = make_clinic(db, timezone=TZ)
    foreign_card, _ = await save_card(db, sandbox_server, other)
    handle = await start_held(temporal_env, db, clinic, local_today(TZ) + timedelta(days=3))
    sub_id = subscription_id_of(handle)
    before = await commands.describe(temporal_env.client, sub_id)

    with pytest.raises(commands.CommandRefused, match="belongs to another client"):
        await commands.change_card(temporal_env.client, sub_id, foreign_card)
    with pytest.raises(commands.CommandRefused, match="mode must be"):
        await commands.cancel(temporal_env.client, sub_id, mode="yesterday")
    with pytest.raises(commands.CommandRefused, match="only a paused subscription"):
        await commands.resume(temporal_env.client, sub_id)
    with pytest.raises(commands.CommandRefused, match="nothing to pay"):
        await commands.pay_now(temporal_env.client, sub_id)
    with pytest.raises(commands.CommandRefused, match="unknown or inactive plan"):
        await commands.change_plan(temporal_env.client, sub_id, "plan_nope")

    after = await commands.describe(temporal_env.client, sub_id)
    assert after == before
    assert events(db, sub_id) == []
    await commands.cancel(temporal_env.client, sub_id, mode="now")


async def test_a_proration_the_policy_refuses_is_an_invalid_command_and_writes_nothing(
    db: Engine, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    """The activity behind an Update, called as the worker calls it: a ValueError of a pure policy is a
    refusal (non-retryable), never an error Temporal would retry while the command holds its turn."""
    clinic = make_clinic(db, timezone=TZ)
    with session_scope(db) as session:
        session.add(HealthPlan(id="plan_premium", location_id=clinic.location_id, name="Premium", price_cents=6_000))
    await save_card(db, sandbox_server, clinic)
    handle = await start_held(temporal_env, db, clinic, local_today(TZ) + timedelta(days=3))
    sub_id = subscription_id_of(handle)
    with Session(db) as session:
        old_plan = terms_of(session.get_one(HealthPlan, clinic.plan_id))
    day = local_today(TZ)
    empty_period = PlanChangeInput(sub_id, old_plan, "plan_premium", datetime.now(UTC), day, day, None)
    gateways = GatewayDirectory(sandbox_server.base_url, {SANDBOX_OID: SANDBOX_TOKEN}, timeout=5.0)
    try:
        with pytest.raises(ApplicationError, match="period_end") as refused:
            await SubscriptionCommandActivities(db, gateways).change_plan(empty_period)
    finally:
        await gateways.aclose()
    assert (refused.value.type, refused.value.non_retryable) == ("InvalidCommand", True)
    with Session(db) as session:
        assert session.get_one(Subscription, sub_id).plan_id == clinic.plan_id
    assert events(db, sub_id) == []
    await commands.cancel(temporal_env.client, sub_id, mode="now")


async def test_a_cancel_whose_activity_fails_for_good_returns_an_error_and_can_be_sent_again(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    clinic = make_clinic(db, timezone=TZ, cancellation_policy="refund_unused")
    await save_card(db, sandbox_server, clinic)
    handle = await start_held(temporal_env, db, clinic, local_today(TZ) - timedelta(days=1))
    sub_id = subscription_id_of(handle)
    await temporal_env.fast_forward(handle, timedelta(days=5))
    # The location now names a merchant the worker holds no Gravity token for: the refund can never be sent.
    _set_merchant(db, clinic.location_id, "oid-without-a-token")

    with pytest.raises(commands.CommandRefused, match="no Gravity token configured"):
        await asyncio.wait_for(commands.cancel(temporal_env.client, sub_id, mode="now"), timeout=30)
    assert (await commands.describe(temporal_env.client, sub_id)).status == "active"  # the lock is free again

    _set_merchant(db, clinic.location_id, SANDBOX_OID)
    assert (await commands.cancel(temporal_env.client, sub_id, mode="now")).status == "cancelled"
    assert await handle.result() == "cancelled"
    with Session(db) as session:
        assert [(r.kind, r.status) for r in session.exec(select(Refund))] == [("refund", "done")]
    assert_books_match_gateway(db, sandbox)


def _set_merchant(engine: Engine, location_id: str, oid: str) -> None:
    with session_scope(engine) as session:
        location = session.get(Location, location_id)
        assert location is not None
        location.gravity_oid = oid
        session.add(location)


async def test_commands_queued_behind_a_cancel_are_refused_once_it_has_run(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    clinic = make_clinic(db, timezone=TZ, price_cents=3_000, cancellation_policy="refund_unused")
    with session_scope(db) as session:
        session.add(HealthPlan(id="plan_premium", location_id=clinic.location_id, name="Premium", price_cents=6_000))
    await save_card(db, sandbox_server, clinic)
    handle = await start_held(temporal_env, db, clinic, local_today(TZ) - timedelta(days=1))
    sub_id = subscription_id_of(handle)
    await temporal_env.fast_forward(handle, timedelta(days=5))
    # The cancel's refund is slow to answer: the pause and the plan change are validated while the
    # subscription is still active, then wait for the cancel to finish.
    sandbox.inject_fault("tokenizedRefund", "slow", delay_s=3.0)
    accepted = WorkflowUpdateStage.ACCEPTED
    cancelling = await handle.start_update(SubscriptionWorkflow.cancel, CancelRequest(mode="now"), wait_for_stage=accepted)
    pausing = await handle.start_update(SubscriptionWorkflow.pause, wait_for_stage=accepted)
    changing = await handle.start_update(SubscriptionWorkflow.change_plan, PlanChange("plan_premium"), wait_for_stage=accepted)

    assert (await cancelling.result()).status == "cancelled"
    paused, changed = await pausing.result(), await changing.result()
    assert (paused.accepted, paused.status) == (False, "cancelled")
    assert (changed.accepted, changed.status) == (False, "cancelled")
    assert await handle.result() == "cancelled"
    kinds = events(db, sub_id)
    assert "subscription.paused" not in kinds and "subscription.plan_changed" not in kinds
    with Session(db) as session:
        assert session.exec(select(Invoice).where(Invoice.kind == "proration")).all() == []
        sub = session.get(Subscription, sub_id)
        assert sub is not None and (sub.status, sub.plan_id) == ("cancelled", clinic.plan_id)
    assert_books_match_gateway(db, sandbox)
    # The refusals in turn replay (`commands_queued_behind_cancel_run0.json` is this run before the patch).
    replayer = Replayer(workflows=[SubscriptionWorkflow], data_converter=data_converter)
    await replayer.replay_workflow(await handle.fetch_history())


async def test_a_plan_change_reaching_a_cancelled_subscription_is_refused_by_its_activity(
    db: Engine, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    """What a run from before the workflow asked again in the command's turn still sends after a cancel."""
    clinic = make_clinic(db, timezone=TZ)
    with session_scope(db) as session:
        session.add(HealthPlan(id="plan_premium", location_id=clinic.location_id, name="Premium", price_cents=6_000))
    await save_card(db, sandbox_server, clinic)
    handle = await start_held(temporal_env, db, clinic, local_today(TZ) + timedelta(days=3))
    sub_id = subscription_id_of(handle)
    await commands.cancel(temporal_env.client, sub_id, mode="now")
    with Session(db) as session:
        old_plan = terms_of(session.get_one(HealthPlan, clinic.plan_id))
    day = local_today(TZ)
    late = PlanChangeInput(sub_id, old_plan, "plan_premium", datetime.now(UTC), day, day + timedelta(days=30), None)
    gateways = GatewayDirectory(sandbox_server.base_url, {SANDBOX_OID: SANDBOX_TOKEN}, timeout=5.0)
    try:
        with pytest.raises(ApplicationError, match="the subscription is cancelled") as refused:
            await SubscriptionCommandActivities(db, gateways).change_plan(late)
    finally:
        await gateways.aclose()
    assert (refused.value.type, refused.value.non_retryable) == ("InvalidCommand", True)
    with Session(db) as session:
        assert session.exec(select(Invoice).where(Invoice.kind == "proration")).all() == []
        assert session.get_one(Subscription, sub_id).plan_id == clinic.plan_id


async def test_a_declined_proration_follows_the_dunning_schedule(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    clinic = make_clinic(db, timezone=TZ, price_cents=3_000)
    with session_scope(db) as session:
        session.add(HealthPlan(id=f"{clinic.plan_id}_premium", location_id=clinic.location_id, name="Premium", price_cents=6_000))
    _, card_ref = await save_card(db, sandbox_server, clinic)
    handle = await start_held(temporal_env, db, clinic, local_today(TZ) - timedelta(days=1))
    sub_id = subscription_id_of(handle)
    await temporal_env.fast_forward(handle, timedelta(days=9))
    sandbox.decline_next(card_ref, "insufficient_funds", count=1)

    assert (await commands.change_plan(temporal_env.client, sub_id, f"{clinic.plan_id}_premium")).accepted
    with Session(db) as session:
        proration = session.exec(select(Invoice).where(Invoice.subscription_id == sub_id, Invoice.kind == "proration")).one()
    assert proration.status == "open"
    view = await commands.describe(temporal_env.client, sub_id)
    assert [(i.invoice_id, i.waiting_for) for i in view.open_invoices] == [(proration.id, "retry")]
    assert view.status == "past_due"

    await temporal_env.fast_forward(handle, timedelta(days=4))  # the first retry, three days after the change
    with Session(db) as session:
        assert session.get_one(Invoice, proration.id).status == "paid"
    assert [(p.attempt, p.status) for p in payments(db, sub_id) if p.invoice_id == proration.id] == [(1, "declined"), (2, "approved")]
    view = await commands.describe(temporal_env.client, sub_id)
    assert (view.status, view.open_invoices) == ("active", [])
    await commands.cancel(temporal_env.client, sub_id, mode="now")
    assert_books_match_gateway(db, sandbox)


async def test_cancel_at_term_end_is_written_to_the_subscription_and_announced(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    clinic = make_clinic(db, timezone=TZ)
    await save_card(db, sandbox_server, clinic)
    handle = await start_held(temporal_env, db, clinic, local_today(TZ) + timedelta(days=3))
    sub_id = subscription_id_of(handle)

    result = await commands.cancel(temporal_env.client, sub_id, mode="term_end")
    assert (result.accepted, result.status) == (True, "active")
    with Session(db) as session:
        sub = session.get(Subscription, sub_id)
        assert sub is not None and (sub.status, sub.cancel_at_term_end) == ("pending", True)  # nothing billed yet
    assert events(db, sub_id) == ["subscription.cancel_scheduled"]
    assert (await commands.describe(temporal_env.client, sub_id)).cancel_at_term_end
    await commands.cancel(temporal_env.client, sub_id, mode="now")


async def test_pause_resume_and_pause_again_in_one_cycle_announce_each_command(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    clinic = make_clinic(db, timezone=TZ)
    await save_card(db, sandbox_server, clinic)
    handle = await start_held(temporal_env, db, clinic, local_today(TZ) - timedelta(days=1))
    sub_id = subscription_id_of(handle)
    await temporal_env.fast_forward(handle, timedelta(days=2))

    assert (await commands.pause(temporal_env.client, sub_id)).status == "paused"
    assert (await commands.resume(temporal_env.client, sub_id)).status == "active"
    assert (await commands.pause(temporal_env.client, sub_id)).status == "paused"
    kinds = [k for k in events(db, sub_id) if k.startswith("subscription.")]
    assert kinds == ["subscription.paused", "subscription.resumed", "subscription.paused"]
    await commands.cancel(temporal_env.client, sub_id, mode="now")
    assert_books_match_gateway(db, sandbox)


async def test_pay_now_while_a_retry_is_being_charged_is_not_lost(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    """Issue 16 item 4: pay-now marked invoices without waiting for the loop's turn, so a charge
    running at that moment wrote its outcome (retry in days) over the request."""
    clinic = make_clinic(db, timezone=TZ)
    _, card_ref = await save_card(db, sandbox_server, clinic)
    sandbox.decline_next(card_ref, "insufficient_funds", count=3)
    handle = await start_held(temporal_env, db, clinic, local_today(TZ) - timedelta(days=1))  # due: charged at once
    sub_id = subscription_id_of(handle)

    def sales() -> int:
        return sum(1 for t in sandbox.transactions() if t["transaction_type"] == "CreditSale")

    for _ in range(100):
        view = await commands.describe(temporal_env.client, sub_id)
        if view.open_invoices and view.open_invoices[0].waiting_for == "retry":
            break
        await asyncio.sleep(0.1)
    sandbox.inject_fault("tokenizedPayment", "500", count=2)  # the local try and the activity's first fail
    await commands.pay_now(temporal_env.client, sub_id)  # the retry starts, and is handed to an activity task
    await asyncio.sleep(1.0)
    await commands.pay_now(temporal_env.client, sub_id)  # asked while that retry is in flight
    for _ in range(100):
        if sales() == 3:
            break
        await asyncio.sleep(0.1)
    assert sales() == 3  # the second pay-now was honoured after the in-flight retry declined
    await commands.cancel(temporal_env.client, sub_id, mode="now")


def _month_number(day: date | None) -> int:
    """Months since year 0, to count the months between two billed periods."""
    assert day is not None
    return day.year * 12 + day.month


async def test_a_command_repeated_under_its_request_key_joins_the_first_update(
    db: Engine, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    """The API's retry of a command whose answer was lost (same Idempotency-Key after the lease)
    attaches to the first Update by its id, instead of asking again and being refused."""
    clinic = make_clinic(db, timezone=TZ)
    await save_card(db, sandbox_server, clinic)
    handle = await start_held(temporal_env, db, clinic, local_today(TZ) - timedelta(days=1))
    sub_id = subscription_id_of(handle)
    await temporal_env.fast_forward(handle, timedelta(days=2))
    audit = commands.Audit(db, Actor("billing-system", "dr-lee"), "key-pause-1")
    first = await commands.pause(temporal_env.client, sub_id, audit=audit)
    again = await commands.pause(temporal_env.client, sub_id, audit=audit)
    assert first.status == again.status == "paused" and again.accepted
    other = commands.Audit(db, Actor("front-desk", None), "key-pause-1")  # another token's key is another request
    with pytest.raises(commands.CommandRefused, match="only an active subscription can be paused"):
        await commands.pause(temporal_env.client, sub_id, audit=other)
    await commands.cancel(temporal_env.client, sub_id, mode="now")
