"""Where money paths meet on one invoice or one client credit: a dunning retry and the counter
terminal, a lost answer and a payment elsewhere, credit arriving between two tries, a cancellation
while the terminal still shows the amount, a deposit refunded after part of it was spent.

Each runs on the real dev server, PostgreSQL and the sandbox over HTTP. One arbiter per invoice
(approved plus pending never above the total) and facts first (what the gateway did is always
booked, then put right) are what these pin down.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from activities.subscription_commands import SubscriptionCommandActivities
from activities.subscriptions import SubscriptionActivities
from bench.charge_cost import first_attempt
from foundation.contracts import CancelInput, ChargeOutcome, ChargeRequest, PlanTerms, SubscriptionInput
from gravity.directory import GatewayDirectory
from gravity.errors import GravityError
from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from models.billing import Deposit, Payment
from models.db import session_scope
from models.outbox import OutboxEvent
from operations.enrollment import EnrollRequest, record_enrollment
from operations.payments import PaymentRefused
from tests.payments.conftest import Receiver
from tests.payments.helpers import (
    DEVICE,
    OID,
    assert_books_match,
    assert_clearing_matches_gateway,
    card_deposit,
    deposit_refund,
    invoice,
    payments_of,
    refund,
    refunds_of,
    start_at_counter,
    wait_for_state,
)
from tests.support.cards import save_card
from tests.support.clinic import Clinic


async def _enrolled(engine: Engine, server: SandboxServer, clinic: Clinic, card: tuple[str, str] | None = None) -> tuple[SubscriptionInput, str]:
    """A subscription on a saved card (a new one unless given); returns its workflow input and the
    card's Gravity ref."""
    card_id, card_ref = card or await save_card(engine, server, clinic)
    request = EnrollRequest(clinic.client_id, clinic.pet_id, clinic.plan_id, clinic.location_id, date(2026, 11, 1), card_id=card_id)
    workflow_input, _ = record_enrollment(engine, request)
    return workflow_input, card_ref


def _plan(workflow_input: SubscriptionInput) -> PlanTerms:
    """The enrolled subscription's plan (enrollment always records one)."""
    assert workflow_input.state.plan is not None
    return workflow_input.state.plan


def _attempt(request: ChargeRequest, attempt: int) -> ChargeRequest:
    """The dunning retry the workflow would send for the same cycle."""
    from dataclasses import replace

    return replace(request, attempt=attempt)


async def _charge(engine: Engine, gateways: GatewayDirectory, request: ChargeRequest) -> ChargeOutcome:
    return await ActivityEnvironment().run(SubscriptionActivities(engine, gateways).charge_cycle, request)


def _sales(sandbox: SandboxControl, reference: str) -> list[dict[str, Any]]:
    return [r for r in sandbox.transactions() if r["transaction_type"] == "CreditSale" and r["reference"] == reference]


def _event_types(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return [row.type for row in session.exec(select(OutboxEvent).order_by(col(OutboxEvent.seq)))]


async def test_a_dunning_retry_waits_while_the_counter_terminal_collects_the_invoice(
    db: Engine,
    sandbox: SandboxControl,
    sandbox_server: SandboxServer,
    temporal_env: WorkflowEnvironment,
    gateways: GatewayDirectory,
    clinic: Clinic,
    ready: Receiver,
) -> None:
    """Defect 1: a retry on the card on file and a terminal sale both collected one invoice; the
    second approval could not be booked and was retried forever."""
    workflow_input, card_ref = await _enrolled(db, sandbox_server, clinic)
    sandbox.decline_next(card_ref, "insufficient_funds")
    first = await _charge(db, gateways, first_attempt(workflow_input))
    assert first.outcome == "declined"

    counter = await start_at_counter(temporal_env, db, gateways, clinic, invoice_id=first.invoice_id)
    await wait_for_state(counter, "waiting_at_counter")
    retry = await _charge(db, gateways, _attempt(first_attempt(workflow_input), 2))
    assert (retry.outcome, retry.not_charged_reason) == ("not_charged", "collection_in_progress")

    sandbox.present_card(OID, DEVICE)
    paid = await asyncio.wait_for(counter.result(), 30)
    assert paid.status == "approved"
    assert (invoice(db, first.invoice_id).status, invoice(db, first.invoice_id).paid_cents) == ("paid", 4_500)
    assert [s["status"] for s in _sales(sandbox, first.invoice_id)] == ["declined", "approved"]
    assert_books_match(db, sandbox)
    assert_clearing_matches_gateway(db, sandbox)


async def test_a_lost_answer_is_found_and_no_other_path_collects_meanwhile(
    db: Engine,
    sandbox: SandboxControl,
    sandbox_server: SandboxServer,
    temporal_env: WorkflowEnvironment,
    gateways: GatewayDirectory,
    clinic: Clinic,
    ready: Receiver,
) -> None:
    """Defect 2: a pending attempt was abandoned once the invoice was paid elsewhere, so the sale
    whose answer was lost was never booked (the client paid twice, the books saw once)."""
    workflow_input, _ = await _enrolled(db, sandbox_server, clinic)
    sandbox.inject_fault("tokenizedPayment", "lost")
    sandbox.inject_fault("lookup", "500", count=20)
    with pytest.raises(GravityError):
        await _charge(db, gateways, first_attempt(workflow_input))
    sandbox.clear_faults()
    (pending,) = payments_of(db, _invoice_of(workflow_input))
    assert pending.status == "pending"

    with pytest.raises(PaymentRefused, match="in progress"):
        await start_at_counter(temporal_env, db, gateways, clinic, invoice_id=pending.invoice_id)

    again = await _charge(db, gateways, first_attempt(workflow_input))
    assert (again.outcome, again.charged_cents) == ("paid", 4_500)
    assert len(_sales(sandbox, pending.invoice_id or "")) == 1
    assert_books_match(db, sandbox)


def _invoice_of(workflow_input: SubscriptionInput) -> str:
    from foundation.ids import invoice_id_for_cycle

    return invoice_id_for_cycle(workflow_input.setup.subscription_id, first_attempt(workflow_input).period_start)


async def test_an_unsent_attempt_is_not_resent_for_more_than_the_invoice_still_needs(
    db: Engine,
    sandbox: SandboxControl,
    sandbox_server: SandboxServer,
    gateways: GatewayDirectory,
    clinic: Clinic,
) -> None:
    """Defect 2: a pending row was re-sent with its old amount after client credit lowered the
    balance: an overcharge the books then refused, retried forever."""
    workflow_input, _ = await _enrolled(db, sandbox_server, clinic)
    sandbox.inject_fault("tokenizedPayment", "500", count=20)
    with pytest.raises(GravityError):
        await _charge(db, gateways, first_attempt(workflow_input))
    sandbox.clear_faults()
    with session_scope(db) as session:
        session.add(Deposit(id="dep_between_tries", client_id=clinic.client_id, location_id=clinic.location_id, amount_cents=1_000, remaining_cents=1_000))

    again = await _charge(db, gateways, first_attempt(workflow_input))
    assert (again.outcome, again.not_charged_reason) == ("not_charged", "superseded")
    assert _sales(sandbox, again.invoice_id) == []
    following = await _charge(db, gateways, _attempt(first_attempt(workflow_input), 2))
    assert (following.outcome, following.charged_cents) == ("paid", 3_500)
    assert (invoice(db, again.invoice_id).status, invoice(db, again.invoice_id).paid_cents) == ("paid", 4_500)
    assert [(p.attempt, p.status, p.amount_cents) for p in payments_of(db, again.invoice_id)] == [(1, "failed", 4_500), (2, "approved", 3_500)]
    assert_books_match(db, sandbox)


async def test_a_late_approval_on_a_cancelled_invoice_is_booked_and_given_back(
    db: Engine,
    sandbox: SandboxControl,
    sandbox_server: SandboxServer,
    temporal_env: WorkflowEnvironment,
    gateways: GatewayDirectory,
    clinic: Clinic,
    ready: Receiver,
) -> None:
    """Defect 3: cancelling while the terminal showed the amount; the approval turned the void
    invoice into paid, receivable went negative and nothing gave the money back."""
    workflow_input, card_ref = await _enrolled(db, sandbox_server, clinic)
    sandbox.decline_next(card_ref, "insufficient_funds")
    first = await _charge(db, gateways, first_attempt(workflow_input))
    counter = await start_at_counter(temporal_env, db, gateways, clinic, invoice_id=first.invoice_id)
    await wait_for_state(counter, "waiting_at_counter")

    cancel = CancelInput(
        subscription_id=workflow_input.setup.subscription_id,
        plan=_plan(workflow_input),
        card_id=workflow_input.state.card_id,
        cancel_at=datetime.now(UTC),
        period_start=None,
        period_end=None,
        open_invoice_ids=[first.invoice_id],
        reason="moving away",
    )
    await ActivityEnvironment().run(SubscriptionCommandActivities(db, gateways).cancel_subscription, cancel)
    assert invoice(db, first.invoice_id).status == "void"

    sandbox.present_card(OID, DEVICE)
    await asyncio.wait_for(counter.result(), 30)
    voided = invoice(db, first.invoice_id)
    assert (voided.status, voided.paid_cents) == ("void", 0)
    (tapped,) = [p for p in payments_of(db, first.invoice_id) if p.method == "terminal"]
    assert (tapped.status, tapped.approved_cents, tapped.refunded_cents) == ("voided", 4_500, 4_500)
    assert [(r.kind, r.status) for r in refunds_of(db, tapped.id)] == [("void", "done")]
    assert "payment.overpaid" in _event_types(db)
    with Session(db) as session:
        assert session.exec(select(Deposit).where(Deposit.client_id == clinic.client_id, Deposit.remaining_cents > 0)).all() == []
    assert_books_match(db, sandbox)
    assert_clearing_matches_gateway(db, sandbox)


async def test_a_deposit_is_refunded_only_down_to_its_unused_credit(
    db: Engine,
    sandbox: SandboxControl,
    sandbox_server: SandboxServer,
    gateways: GatewayDirectory,
    clinic: Clinic,
    temporal_env: WorkflowEnvironment,
    billing_worker: Worker,
) -> None:
    """Defect 4: a $100 deposit, $45 of it spent, then the deposit's payment refunded in full: the
    clinic lost $45 and the client's credit turned into a debt."""
    card = await save_card(db, sandbox_server, clinic)
    taken = await card_deposit(temporal_env, db, client_id=clinic.client_id, card_id=card[0], amount_cents=10_000, request_id="dep-1")
    assert taken.deposit_id is not None
    workflow_input, _ = await _enrolled(db, sandbox_server, clinic, card)
    spent = await _charge(db, gateways, first_attempt(workflow_input))
    assert (spent.outcome, spent.charged_cents) == ("paid", 0)  # the $45 came from the credit

    with pytest.raises(PaymentRefused, match="5500 cents of its credit"):
        await refund(temporal_env, db, taken.payment_id, request_id="all")
    with pytest.raises(PaymentRefused, match="5500 cents of its credit"):
        await refund(temporal_env, db, taken.payment_id, amount_cents=5_501, request_id="too-much")
    given = await refund(temporal_env, db, taken.payment_id, amount_cents=5_500, request_id="rest")
    assert given.amount_cents == 5_500
    with pytest.raises(PaymentRefused, match="no unused credit"):
        await deposit_refund(temporal_env, db, taken.deposit_id, request_id="again")
    with Session(db) as session:
        credit = session.get(Deposit, taken.deposit_id)
        assert credit is not None and (credit.remaining_cents, credit.status) == (0, "refunded")
        funding = session.get(Payment, taken.payment_id)
        assert funding is not None and funding.refunded_cents == 5_500
    assert_books_match(db, sandbox)
    assert_clearing_matches_gateway(db, sandbox)


async def test_cancel_now_refunds_a_period_paid_by_two_payments_and_always_ends_cancelled(
    db: Engine,
    sandbox: SandboxControl,
    sandbox_server: SandboxServer,
    gateways: GatewayDirectory,
    clinic: Clinic,
) -> None:
    """Defect 7: cancel-now committed its voids first and refunded after; a period paid by two
    payments could not be refunded from either alone, the Update failed and billing went on."""
    workflow_input, card_ref = await _enrolled(db, sandbox_server, clinic)
    sandbox.partial_next(card_ref, 2_200)
    first = await _charge(db, gateways, first_attempt(workflow_input))
    assert (first.outcome, first.charged_cents) == ("partial", 2_200)
    rest = await _charge(db, gateways, _attempt(first_attempt(workflow_input), 2))
    assert (rest.outcome, rest.charged_cents) == ("paid", 2_300)

    request = first_attempt(workflow_input)
    cancel = CancelInput(
        subscription_id=request.subscription_id,
        plan=request.plan,
        card_id=request.card_id,
        cancel_at=datetime(2026, 11, 2, 18, 0, tzinfo=UTC),
        period_start=request.period_start,
        period_end=request.period_end,
        open_invoice_ids=[],
        reason="moving away",
    )
    outcome = await ActivityEnvironment().run(SubscriptionCommandActivities(db, gateways).cancel_subscription, cancel)
    assert (outcome.settlement_kind, outcome.settlement_cents) == ("refund", 4_350)  # 29 of 30 days unused
    given = sorted((r.amount_cents, r.status) for p in payments_of(db, first.invoice_id) for r in refunds_of(db, p.id))
    assert sum(amount for amount, _ in given) == 4_350 and {status for _, status in given} == {"done"}
    from models.subscriptions import Subscription

    with Session(db) as session:
        subscription = session.get(Subscription, request.subscription_id)
        assert subscription is not None and subscription.status == "cancelled"
    assert_books_match(db, sandbox)
    assert_clearing_matches_gateway(db, sandbox)


async def test_a_tip_at_the_terminal_is_booked_as_approved(
    db: Engine,
    sandbox: SandboxControl,
    temporal_env: WorkflowEnvironment,
    gateways: GatewayDirectory,
    clinic: Clinic,
    ready: Receiver,
) -> None:
    """Defect 8: an approval above the request (a tip) broke ck_payment_approved_le_amount and the
    booking was retried forever."""
    from tests.payments.helpers import counter_invoice

    invoice_id = counter_invoice(db, clinic, 10_000)
    counter = await start_at_counter(temporal_env, db, gateways, clinic, invoice_id=invoice_id)
    await wait_for_state(counter, "waiting_at_counter")
    sandbox.present_card(OID, DEVICE, tip_cents=1_500, surcharge_cents=300)
    outcome = await asyncio.wait_for(counter.result(), 30)

    assert (outcome.status, outcome.approved_cents, outcome.balance_cents) == ("approved", 11_800, 0)
    (tapped,) = payments_of(db, invoice_id)
    assert (tapped.amount_cents, tapped.approved_cents, tapped.tip_cents, tapped.surcharge_cents) == (10_000, 11_800, 1_500, 300)
    assert tapped.gateway_facts is not None and tapped.gateway_facts["tip_cents"] == 1_500
    assert (invoice(db, invoice_id).status, invoice(db, invoice_id).paid_cents) == ("paid", 10_000)
    from books.ledger import account_balances

    with Session(db) as session:
        balances = account_balances(session)
    assert (balances.get("tips_payable"), balances.get("fee_revenue")) == (-1_500, -10_300)
    assert_books_match(db, sandbox)
    assert_clearing_matches_gateway(db, sandbox)


async def test_an_approval_that_states_no_amount_is_booked_as_what_was_asked(
    db: Engine,
    sandbox: SandboxControl,
    sandbox_server: SandboxServer,
    gateways: GatewayDirectory,
    clinic: Clinic,
) -> None:
    """Defect 8: an approval without amount fields was booked as 0 and the invoice charged again."""
    workflow_input, _ = await _enrolled(db, sandbox_server, clinic)
    sandbox.inject_fault("tokenizedPayment", "amountless")
    outcome = await _charge(db, gateways, first_attempt(workflow_input))
    assert (outcome.outcome, outcome.charged_cents, outcome.balance_cents) == ("paid", 4_500, 0)
    assert_books_match(db, sandbox)


async def test_the_subscription_waits_while_the_counter_collects_and_recovers_when_it_pays(
    db: Engine,
    sandbox: SandboxControl,
    sandbox_server: SandboxServer,
    temporal_env: WorkflowEnvironment,
    gateways: GatewayDirectory,
    ready: Receiver,
) -> None:
    """Defect 1 through the workflow: pay-now while the terminal shows the amount sends nothing to
    the card; the terminal's approval pays the invoice and the subscription is active again."""
    from datetime import timedelta

    from operations import subscriptions as commands
    from tests.subscriptions.helpers import local_today, start_held, subscription_id_of
    from tests.support.clinic import make_clinic
    from workflows.subscription import SubscriptionWorkflow

    clinic = make_clinic(db, timezone="America/Chicago", price_cents=4_500)
    _, card_ref = await save_card(db, sandbox_server, clinic)
    sandbox.decline_next(card_ref, "insufficient_funds")
    handle = await start_held(temporal_env, db, clinic, local_today("America/Chicago") - timedelta(days=1))  # due: billed at once
    subscription_id = subscription_id_of(handle)

    async def view_until(done: Any) -> Any:
        for _ in range(300):
            view = await handle.query(SubscriptionWorkflow.describe)
            if done(view):
                return view
            await asyncio.sleep(0.1)
        raise AssertionError(f"subscription never reached the expected state: {view}")

    declined = await view_until(lambda v: v.open_invoices and v.open_invoices[0].waiting_for == "retry")
    invoice_id = declined.open_invoices[0].invoice_id
    counter = await start_at_counter(temporal_env, db, gateways, clinic, invoice_id=invoice_id)
    await wait_for_state(counter, "waiting_at_counter")

    await commands.pay_now(temporal_env.client, subscription_id)
    await view_until(lambda v: v.history and v.history[-1].detail == "collection_in_progress")
    assert [s["status"] for s in _sales(sandbox, invoice_id)] == ["declined"]  # the card was not charged again

    sandbox.present_card(OID, DEVICE)
    assert (await asyncio.wait_for(counter.result(), 30)).status == "approved"
    recovered = await view_until(lambda v: v.status == "active" and not v.open_invoices)
    assert recovered.balance_cents == 0
    assert [s["status"] for s in _sales(sandbox, invoice_id)] == ["declined", "approved"]
    assert_books_match(db, sandbox)


async def test_a_partly_paid_invoice_written_off_at_cancellation_reverses_each_revenue_pro_rata(
    db: Engine,
    sandbox: SandboxControl,
    sandbox_server: SandboxServer,
    gateways: GatewayDirectory,
) -> None:
    """Issue 16 item 6: the unpaid remainder of an invoice with an enrollment fee was written off
    entirely against plan revenue."""
    from books.ledger import account_balances
    from tests.support.clinic import make_clinic

    clinic = make_clinic(db, price_cents=4_500, enrollment_fee_cents=2_000)
    workflow_input, card_ref = await _enrolled(db, sandbox_server, clinic)
    sandbox.partial_next(card_ref, 3_250)
    first = await _charge(db, gateways, first_attempt(workflow_input))
    assert (first.outcome, first.balance_cents) == ("partial", 3_250)
    cancel = CancelInput(
        subscription_id=workflow_input.setup.subscription_id,
        plan=_plan(workflow_input),
        card_id=workflow_input.state.card_id,
        cancel_at=datetime.now(UTC),
        period_start=None,
        period_end=None,
        open_invoice_ids=[first.invoice_id],
        reason="moving away",
    )
    await ActivityEnvironment().run(SubscriptionCommandActivities(db, gateways).cancel_subscription, cancel)
    with Session(db) as session:
        balances = account_balances(session)
    # Billed 4500 plan + 2000 fee; 3250 unpaid comes off 2250 plan and 1000 fee.
    assert (balances.get("plan_revenue"), balances.get("fee_revenue"), balances.get("accounts_receivable", 0)) == (-2_250, -1_000, 0)
    assert invoice(db, first.invoice_id).status == "void"
