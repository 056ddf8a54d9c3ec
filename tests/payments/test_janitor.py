"""The janitor and the daily reconciliation, on the real dev server, PostgreSQL and the sandbox:
pending money movements nobody finishes are resolved by lookup, and the books are compared with
what Gravity says happened."""

from __future__ import annotations

import contextlib
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, text, update
from sqlmodel import Session, col, select
from temporalio.client import ScheduleActionStartWorkflow
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from activities.janitor import JanitorActivities
from activities.subscriptions import SubscriptionActivities
from bench.charge_cost import first_attempt
from foundation.contracts import JanitorInput, JanitorReport, ReconciliationInput
from foundation.ids import invoice_id_for_cycle
from foundation.settings import SANDBOX_OID, SANDBOX_TOKEN
from gravity.client import CALLER_TIME, GravityClient
from gravity.directory import GatewayDirectory
from gravity.errors import GravityError
from gravity.sandbox.control import SandboxControl
from gravity.sandbox.listing import SandboxListing
from gravity.sandbox.server import SandboxServer
from models.billing import Payment, Refund
from models.clinic import Location
from models.db import session_scope
from models.outbox import OutboxEvent
from operations.enrollment import EnrollRequest, record_enrollment
from operations.period_reconciliation import reconcile_period
from operations.schedules import JANITOR_SCHEDULE, RECONCILIATION_SCHEDULE, ensure_schedules
from tests.payments.helpers import assert_books_match, card_deposit, deposit_refund, invoice, payments_of
from tests.support.cards import save_card
from tests.support.clinic import Clinic, make_clinic
from workflows.money_janitor import MoneyJanitorWorkflow

TASK_QUEUE = "billing-tests"


async def _stranded_charge(db: Engine, sandbox: SandboxControl, server: SandboxServer, gateways: GatewayDirectory, clinic: Clinic, fault: str) -> str:
    """A first cycle charge whose activity gave up with its attempt pending; returns the invoice id."""
    card_id, _ = await save_card(db, server, clinic)
    request = EnrollRequest(clinic.client_id, clinic.pet_id, clinic.plan_id, clinic.location_id, date(2026, 11, 1), card_id=card_id)
    workflow_input, _ = record_enrollment(db, request)
    sandbox.inject_fault("tokenizedPayment", fault)
    sandbox.inject_fault("lookup", "500", count=20)
    with pytest.raises(GravityError):
        await ActivityEnvironment().run(SubscriptionActivities(db, gateways).charge_cycle, first_attempt(workflow_input))
    sandbox.clear_faults()
    invoice_id = invoice_id_for_cycle(workflow_input.setup.subscription_id, first_attempt(workflow_input).period_start)
    assert [p.status for p in payments_of(db, invoice_id)] == ["pending"]
    return invoice_id


async def _sweep(db: Engine, gateways: GatewayDirectory, older_than_s: int = 0) -> JanitorReport:
    return await ActivityEnvironment().run(JanitorActivities(db, gateways).resolve_stale_money, JanitorInput(older_than_s=older_than_s))


async def test_the_janitor_books_a_sale_whose_answer_was_lost(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, gateways: GatewayDirectory, clinic: Clinic
) -> None:
    invoice_id = await _stranded_charge(db, sandbox, sandbox_server, gateways, clinic, "lost")
    assert (await _sweep(db, gateways, older_than_s=3600)).booked == 0  # too young: a live try may still own it

    report = await _sweep(db, gateways)
    assert (report.booked, report.closed) == (1, 0)
    assert [p.status for p in payments_of(db, invoice_id)] == ["approved"]
    assert invoice(db, invoice_id).status == "paid"
    assert_books_match(db, sandbox)
    _assert_ledger_days_folded(db)


def _assert_ledger_days_folded(db: Engine) -> None:
    """After a sweep the ledger's daily sums are one row per location, account and day, and equal the entries."""
    with Session(db) as session:
        assert session.execute(text("SELECT 1 FROM ledger_day GROUP BY location_id, account, day HAVING count(*) > 1")).all() == []
        days = session.execute(text("SELECT account, sum(entries), sum(debit_cents - credit_cents) FROM ledger_day GROUP BY account ORDER BY account"))
        entries = session.execute(text("SELECT account, count(*), sum(amount_cents) FROM ledger_entry GROUP BY account ORDER BY account"))
        assert [tuple(row) for row in days] == [tuple(row) for row in entries] != []


async def test_the_janitor_closes_an_attempt_gravity_never_saw_and_frees_the_invoice(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, gateways: GatewayDirectory, clinic: Clinic
) -> None:
    invoice_id = await _stranded_charge(db, sandbox, sandbox_server, gateways, clinic, "500")
    report = await _sweep(db, gateways)
    assert (report.booked, report.closed) == (0, 1)
    assert [p.status for p in payments_of(db, invoice_id)] == ["failed"]
    with Session(db) as session:
        assert session.exec(select(OutboxEvent).where(OutboxEvent.type == "payment.closed_unsent")).first() is not None
    assert invoice(db, invoice_id).status == "open"
    assert_books_match(db, sandbox)


async def test_the_reconciliation_reports_a_sale_the_books_do_not_match(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, gateways: GatewayDirectory, clinic: Clinic
) -> None:
    invoice_id = await _stranded_charge(db, sandbox, sandbox_server, gateways, clinic, "lost")
    await _sweep(db, gateways)
    with Session(db) as session:  # the books' day is the location's own, as in every reconciliation
        location = session.get(Location, clinic.location_id)
        assert location is not None
        today = datetime.now(ZoneInfo(location.timezone)).date()
    activities = JanitorActivities(db, gateways)
    clean = await ActivityEnvironment().run(activities.reconcile_day, ReconciliationInput(day=today))
    assert (clean.checked, clean.differences) == (1, [])

    with session_scope(db) as session:  # the books lose 5 dollars of the sale
        session.execute(update(Payment).where(col(Payment.invoice_id) == invoice_id).values(approved_cents=4_000))
    report = await ActivityEnvironment().run(activities.reconcile_day, ReconciliationInput(day=today))
    assert len(report.differences) == 1 and "ours 4000 cents, gateway 4500 cents" in report.differences[0]
    with Session(db) as session:
        types = [e.type for e in session.exec(select(OutboxEvent).where(OutboxEvent.stream == "finance:reconciliation"))]
    assert types.count("reconciliation.difference") == 1 and "reconciliation.completed" in types


async def _deposit_booked_at(
    db: Engine, sandbox_server: SandboxServer, env: WorkflowEnvironment, timezone: str, at: datetime, settled: datetime | None = None
) -> str:
    """A real card deposit at a new clinic in `timezone`, taken `at` and settled `settled` (else `at`) in
    the books, whose amount the books then get wrong by a dollar (so the reconciliation names it when
    it checks it); its external id."""
    clinic = make_clinic(db, timezone=timezone)
    card_id, _ = await save_card(db, sandbox_server, clinic)
    taken = await card_deposit(env, db, client_id=clinic.client_id, card_id=card_id, amount_cents=2_000, request_id=f"late-{timezone}")
    with session_scope(db) as session:
        session.execute(
            update(Payment)
            .where(col(Payment.id) == taken.payment_id)
            .values(created_at=at, updated_at=settled or at, settled_at=settled or at, approved_cents=1_900)
        )
        payment = session.get(Payment, taken.payment_id)
        assert payment is not None
        return payment.external_transaction_id


async def test_the_scheduled_reconciliation_waits_for_each_clinics_day_to_end(
    db: Engine, sandbox_server: SandboxServer, gateways: GatewayDirectory, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    # the schedule's 07:00 UTC of 16 June is 21:00 of the 15th in Honolulu, 03:00 of the 16th in New York
    now = datetime(2026, 6, 16, 7, 0, tzinfo=ZoneInfo("UTC"))
    honolulu = await _deposit_booked_at(db, sandbox_server, temporal_env, "Pacific/Honolulu", datetime(2026, 6, 14, 22, 0, tzinfo=ZoneInfo("Pacific/Honolulu")))
    new_york = await _deposit_booked_at(db, sandbox_server, temporal_env, "America/New_York", datetime(2026, 6, 15, 12, 0, tzinfo=ZoneInfo("America/New_York")))

    report = await ActivityEnvironment().run(JanitorActivities(db, gateways, clock=lambda: now).reconcile_day, ReconciliationInput())
    for external_id in (honolulu, new_york):  # Honolulu's 14th has ended, its 15th has not
        assert any(external_id in line and "ours 1900 cents, gateway 2000 cents" in line for line in report.differences), report.differences
    assert report.days == [date(2026, 6, 14), date(2026, 6, 15)] and report.day == date(2026, 6, 15)


async def test_a_sale_settled_the_day_after_it_was_taken_is_reconciled_with_the_day_it_settled(
    db: Engine, sandbox_server: SandboxServer, gateways: GatewayDirectory, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    zone = ZoneInfo("America/Denver")  # still pending when its own day was reconciled
    late = await _deposit_booked_at(
        db, sandbox_server, temporal_env, "America/Denver", datetime(2026, 5, 4, 23, 0, tzinfo=zone), datetime(2026, 5, 5, 1, 0, tzinfo=zone)
    )

    settled_day = await reconcile_period(db, gateways, date(2026, 5, 5), date(2026, 5, 5))
    (movement,) = [m for m in settled_day.movements if m.external_transaction_id == late]
    assert (movement.booked_on, movement.status, movement.ours_cents, movement.gateway_cents) == (date(2026, 5, 4), "differs", 1_900, 2_000)
    both_days = await reconcile_period(db, gateways, date(2026, 5, 4), date(2026, 5, 5))
    assert [m.external_transaction_id for m in both_days.movements].count(late) == 1  # once in one answer


async def test_a_sale_written_again_after_it_settled_is_not_reconciled_again_that_day(
    db: Engine, sandbox_server: SandboxServer, gateways: GatewayDirectory, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    # taken and settled on the 4th; a refund on the 6th writes the payment again (its updated_at)
    zone = ZoneInfo("America/Chicago")
    sale = await _deposit_booked_at(db, sandbox_server, temporal_env, "America/Chicago", datetime(2026, 5, 4, 12, 0, tzinfo=zone))
    with session_scope(db) as session:
        session.execute(update(Payment).where(col(Payment.external_transaction_id) == sale).values(updated_at=datetime(2026, 5, 6, 9, 0, tzinfo=zone)))

    taken_day = await reconcile_period(db, gateways, date(2026, 5, 4), date(2026, 5, 4))
    refund_day = await reconcile_period(db, gateways, date(2026, 5, 6), date(2026, 5, 6))
    assert sale in [m.external_transaction_id for m in taken_day.movements]
    assert sale not in [m.external_transaction_id for m in refund_day.movements], "a later write re-lists a sale reconciled on its day"


async def test_the_schedules_are_created_once_and_the_janitor_runs_as_a_workflow(
    db: Engine,
    sandbox: SandboxControl,
    sandbox_server: SandboxServer,
    gateways: GatewayDirectory,
    clinic: Clinic,
    temporal_env: WorkflowEnvironment,
    billing_worker: Worker,
) -> None:
    schedule_ids = (JANITOR_SCHEDULE, RECONCILIATION_SCHEDULE)
    for schedule_id in schedule_ids:  # a worker process of another test may have created them already
        with contextlib.suppress(Exception):
            await temporal_env.client.get_schedule_handle(schedule_id).delete()
    first = await ensure_schedules(temporal_env.client, f"{TASK_QUEUE}-schedules")
    again = await ensure_schedules(temporal_env.client, f"{TASK_QUEUE}-schedules")
    assert (sorted(first), again) == (sorted(schedule_ids), [])
    for schedule_id in schedule_ids:  # they start workflows on a queue nobody polls; remove them
        described = await temporal_env.client.get_schedule_handle(schedule_id).describe()
        action = described.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow) and action.task_queue == f"{TASK_QUEUE}-schedules"
        await temporal_env.client.get_schedule_handle(schedule_id).delete()

    invoice_id = await _stranded_charge(db, sandbox, sandbox_server, gateways, clinic, "lost")
    report = await temporal_env.client.execute_workflow(
        MoneyJanitorWorkflow.run, JanitorInput(older_than_s=0), id=f"janitor-test-{invoice_id}", task_queue=TASK_QUEUE
    )
    assert report.booked == 1
    assert invoice(db, invoice_id).status == "paid"


async def test_the_janitor_books_a_terminal_approval_that_ended_in_manual_review(
    db: Engine,
    sandbox: SandboxControl,
    temporal_env: WorkflowEnvironment,
    gateways: GatewayDirectory,
    clinic: Clinic,
    billing_worker: Worker,
) -> None:
    """Chaos: the customer's tap was approved during a lookup outage (and no postback came), so the
    terminal payment ended in manual review, `unknown`, and no sweep ever booked the money."""
    from tests.payments.helpers import COARSE, DEVICE, OID, counter_invoice, start_at_counter, wait_for_state

    sandbox.configure_postbacks(hold=True)  # the postback is lost too
    invoice_id = counter_invoice(db, clinic, 5_000)
    handle = await start_at_counter(temporal_env, db, gateways, clinic, invoice_id=invoice_id, timing=COARSE)
    view = await wait_for_state(handle, "waiting_at_counter")
    sandbox.inject_fault("lookup", "500", count=1_000)
    sandbox.present_card(OID, DEVICE)
    await temporal_env.fast_forward(handle)
    assert (await handle.result()).status == "manual_review"
    assert [p.status for p in payments_of(db, invoice_id)] == ["unknown"]
    sandbox.clear_faults()

    assert (await _sweep(db, gateways)).booked == 0  # a terminal sale is left to its workflow for hours
    report = await ActivityEnvironment().run(JanitorActivities(db, gateways).resolve_stale_money, JanitorInput(older_than_s=0, terminal_older_than_s=0))
    assert report.booked == 1
    assert [(p.id, p.status, p.approved_cents) for p in payments_of(db, invoice_id)] == [(view.payment_id, "approved", 5_000)]
    assert invoice(db, invoice_id).status == "paid"
    assert_books_match(db, sandbox)


async def test_a_refund_finished_the_day_after_it_was_started_is_reconciled_on_some_day(
    db: Engine, sandbox_server: SandboxServer, gateways: GatewayDirectory, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    # As the late sale above, but a refund: started (pending) on the 4th, when the 4th was reconciled,
    # and done on the 5th. Refunds have no updated_at and are chosen by created_at alone, so no day's
    # reconciliation ever compares it with the gateway.
    zone = ZoneInfo("America/Denver")
    clinic = make_clinic(db, timezone="America/Denver")
    card_id, _ = await save_card(db, sandbox_server, clinic)
    taken = await card_deposit(temporal_env, db, client_id=clinic.client_id, card_id=card_id, amount_cents=2_000, request_id="late-refund")
    assert taken.deposit_id is not None
    given = await deposit_refund(temporal_env, db, taken.deposit_id, request_id="late-refund-back")
    assert given.refund_id is not None
    with session_scope(db) as session:
        refund = session.get(Refund, given.refund_id)
        assert refund is not None and refund.settled_at is not None  # the books settled it when it was done
        external_id = refund.external_transaction_id
        session.execute(
            update(Refund)
            .where(col(Refund.id) == given.refund_id)
            .values(created_at=datetime(2026, 5, 4, 23, 0, tzinfo=zone), status="pending", settled_at=None)
        )
    taken_day = await reconcile_period(db, gateways, date(2026, 5, 4), date(2026, 5, 4))  # while it was pending
    finished = datetime(2026, 5, 5, 1, 0, tzinfo=zone)
    with session_scope(db, at=finished) as session:  # the books make it final in a session dated the 5th
        refund = session.get(Refund, given.refund_id)
        assert refund is not None
        refund.status = "done"
        session.add(refund)
    with Session(db) as session:
        refund = session.get(Refund, given.refund_id)
        assert refund is not None and refund.settled_at == finished
    settled_day = await reconcile_period(db, gateways, date(2026, 5, 5), date(2026, 5, 5))  # the day it finished
    checked = [m.external_transaction_id for m in (*taken_day.movements, *settled_day.movements)]
    assert external_id in checked, "a refund that finished after its day was reconciled is never checked"
    both_days = await reconcile_period(db, gateways, date(2026, 5, 4), date(2026, 5, 5))
    assert [m.external_transaction_id for m in both_days.movements].count(external_id) == 1  # once in one answer


async def test_the_scheduled_reconciliation_lists_a_shared_oids_sales_on_each_clinics_ended_day(
    db: Engine, sandbox_server: SandboxServer, gateways: GatewayDirectory, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    # Honolulu and New York share the merchant OID; at 07:00 UTC on 16 June their newest ended days
    # are the 14th and the 15th. A gateway-only sale on each clinic's own ended day is a difference,
    # but the OID's list is read once, on the first location's day in its zone: the other's is lost.
    honolulu, new_york = make_clinic(db, timezone="Pacific/Honolulu"), make_clinic(db, timezone="America/New_York")
    _, card_ref = await save_card(db, sandbox_server, honolulu)
    sold = {
        "stray-honolulu-14": datetime(2026, 6, 14, 12, 0, tzinfo=ZoneInfo("Pacific/Honolulu")),
        "stray-new-york-15": datetime(2026, 6, 15, 12, 0, tzinfo=ZoneInfo("America/New_York")),
        "stray-on-both-days": datetime(2026, 6, 15, 6, 0, tzinfo=ZoneInfo("UTC")),  # Honolulu's 14th and New York's 15th
    }
    async with GravityClient(sandbox_server.base_url, SANDBOX_OID, SANDBOX_TOKEN, tell_sandbox_time=True) as gravity:
        for external_id, at in sold.items():
            token = CALLER_TIME.set(at)
            try:
                assert (await gravity.charge_saved_card(card_ref=card_ref, amount_cents=700, external_id=external_id)).approved
            finally:
                CALLER_TIME.reset(token)
    now = datetime(2026, 6, 16, 7, 0, tzinfo=ZoneInfo("UTC"))
    listed = GatewayDirectory(sandbox_server.base_url, {SANDBOX_OID: SANDBOX_TOKEN}, listing=SandboxListing(sandbox_server.base_url))
    try:
        report = await ActivityEnvironment().run(JanitorActivities(db, listed, clock=lambda: now).reconcile_day, ReconciliationInput())
    finally:
        await listed.aclose()
    assert report.days == [date(2026, 6, 14), date(2026, 6, 15)], (honolulu.location_id, new_york.location_id)
    for external_id in sold:  # each once, though the last is on both clinics' calendars
        assert [external_id in line for line in report.differences].count(True) == 1, (external_id, report.differences)
