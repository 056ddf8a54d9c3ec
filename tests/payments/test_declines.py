"""Declines as the card networks require, on PostgreSQL and the sandbox over HTTP: a card no issuer
will approve again is never charged again, and the networks' reattempt limits hold."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio.testing import ActivityEnvironment

from activities.subscriptions import SubscriptionActivities
from bench.charge_cost import first_attempt
from foundation.contracts import ChargeOutcome, ChargeRequest
from gravity.directory import GatewayDirectory
from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from models.clinic import SavedCard
from models.outbox import OutboxEvent
from operations.enrollment import EnrollRequest, record_enrollment
from tests.support.cards import save_card
from tests.support.clinic import Clinic
from workflows import calendar
from workflows.subscription import due_instant_of


async def _charge(engine: Engine, gateways: GatewayDirectory, request: ChargeRequest) -> ChargeOutcome:
    return await ActivityEnvironment().run(SubscriptionActivities(engine, gateways).charge_cycle, request)


def _sales(sandbox: SandboxControl) -> int:
    return sum(1 for r in sandbox.transactions() if r["transaction_type"] == "CreditSale")


async def test_a_card_no_issuer_will_approve_is_never_charged_again(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, gateways: GatewayDirectory, clinic: Clinic
) -> None:
    card_id, card_ref = await save_card(db, sandbox_server, clinic)
    workflow_input, _ = record_enrollment(
        db, EnrollRequest(clinic.client_id, clinic.pet_id, clinic.plan_id, clinic.location_id, date(2026, 11, 1), card_id=card_id)
    )
    sandbox.decline_next(card_ref, "lost_or_stolen")
    first = await _charge(db, gateways, first_attempt(workflow_input))
    assert (first.outcome, first.decline_class) == ("declined", "hard")
    with Session(db) as session:
        card = session.get(SavedCard, card_id)
        assert card is not None and card.disabled
        assert session.exec(select(OutboxEvent).where(OutboxEvent.type == "card.disabled")).first() is not None

    setup, plan = workflow_input.setup, workflow_input.state.plan
    assert plan is not None
    start, end = calendar.period_for(setup.start_date, 1, interval_months=plan.interval_months)
    next_cycle = replace(
        first_attempt(workflow_input),
        cycle_index=1,
        period_start=start,
        period_end=end,
        due_at=due_instant_of(setup, plan, 1),
        first_cycle=False,
        next_due_at=due_instant_of(setup, plan, 2),
        attempt_at=due_instant_of(setup, plan, 1),
    )
    second = await _charge(db, gateways, next_cycle)
    assert (second.outcome, second.not_charged_reason) == ("not_charged", "no_card")
    assert _sales(sandbox) == 1  # the lost card was tried once, never again


async def test_mastercard_is_tried_at_most_ten_times_in_a_day(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, gateways: GatewayDirectory, clinic: Clinic
) -> None:
    card_id, card_ref = await save_card(db, sandbox_server, clinic, number="5555555555554444")
    workflow_input, _ = record_enrollment(
        db, EnrollRequest(clinic.client_id, clinic.pet_id, clinic.plan_id, clinic.location_id, date(2026, 11, 1), card_id=card_id)
    )
    sandbox.decline_next(card_ref, "insufficient_funds", count=11)
    for attempt in range(1, 11):
        outcome = await _charge(db, gateways, replace(first_attempt(workflow_input), attempt=attempt))
        assert outcome.outcome == "declined", attempt
    eleventh = await _charge(db, gateways, replace(first_attempt(workflow_input), attempt=11))
    assert (eleventh.outcome, eleventh.not_charged_reason) == ("not_charged", "network_limit")
    assert _sales(sandbox) == 10


async def test_a_charge_heartbeats_while_the_database_is_slow(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, gateways: GatewayDirectory, clinic: Clinic
) -> None:
    """Issue 16 item 5: the heartbeat began only at the Gravity call, so a charge waiting on a
    locked row or a busy pool looked like a dead worker and was timed out and retried."""
    import asyncio
    import threading

    from sqlalchemy import text

    card_id, _ = await save_card(db, sandbox_server, clinic)
    workflow_input, _ = record_enrollment(
        db, EnrollRequest(clinic.client_id, clinic.pet_id, clinic.plan_id, clinic.location_id, date(2026, 11, 1), card_id=card_id)
    )
    locked, release = threading.Event(), threading.Event()

    def hold_the_subscription_row() -> None:
        with db.connect() as conn, conn.begin():
            conn.execute(text("SELECT 1 FROM subscription WHERE id = :id FOR UPDATE"), {"id": workflow_input.setup.subscription_id})
            locked.set()
            release.wait(10)

    holder = threading.Thread(target=hold_the_subscription_row)
    holder.start()
    locked.wait(5)
    beats: list[object] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beats.append(details)
    asyncio.get_running_loop().call_later(5.0, release.set)
    try:
        outcome = await env.run(SubscriptionActivities(db, gateways).charge_cycle, first_attempt(workflow_input))
    finally:
        release.set()
        holder.join()
    assert outcome.outcome == "paid"
    assert len(beats) >= 2  # every 2 s while the row was locked
