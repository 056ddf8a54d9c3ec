"""Plans over their life, on the real stack: a price change reaches a subscription at its next
renewal, never mid-term; a retired plan takes no new enrollment and its subscriptions end at term end."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from models.db import session_scope
from models.subscriptions import Subscription
from operations import plans
from operations.enrollment import EnrollRequest, enroll
from operations.history.trail import audit_trail
from operations.redemptions import redeem_service
from operations.refusals import Refusal
from tests.subscriptions.helpers import (
    TASK_QUEUE,
    assert_books_match_gateway,
    events,
    invoices,
    local_today,
    start_held,
    subscription_id_of,
)
from tests.support.cards import save_card
from tests.support.clinic import make_clinic

TZ = "America/Denver"


def change_price(db: Engine, plan_id: str, cents: int) -> None:
    with session_scope(db) as session:
        plan, added = plans.change_terms(session, plan_id, plans.TermsChange(price_cents=cents))
        assert added and plan.price_cents == cents


def redeem(db: Engine, subscription_id: str, code: str = "EXAM") -> int:
    """Redeem one service under the subscription; its retail value."""
    with session_scope(db) as session:
        sub = session.get(Subscription, subscription_id, with_for_update=True)
        assert sub is not None
        return redeem_service(session, sub, code).retail_cents


def pinned_version(db: Engine, subscription_id: str) -> int:
    with session_scope(db) as session:
        row = session.get(Subscription, subscription_id)
        assert row is not None
        return row.plan_version


async def test_a_price_change_waits_for_the_renewal_and_a_retired_plan_ends_at_term_end(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    clinic = make_clinic(db, timezone=TZ, price_cents=4_500, term_months=2, auto_renew=True)
    await save_card(db, sandbox_server, clinic)
    handle = await start_held(temporal_env, db, clinic, local_today(TZ) - timedelta(days=1))
    sub_id = subscription_id_of(handle)
    await temporal_env.fast_forward(handle, timedelta(days=3))  # the first cycle, at the enrolled price
    assert [i.total_cents for i in invoices(db, sub_id)] == [4_500]

    change_price(db, clinic.plan_id, 5_200)  # mid-term
    await temporal_env.fast_forward(handle, timedelta(days=67))  # the term's second cycle, the renewal, the next term's first
    assert [i.total_cents for i in invoices(db, sub_id)] == [4_500, 4_500, 5_200]
    assert all(i.status == "paid" for i in invoices(db, sub_id))
    assert "subscription.renewed" in events(db, sub_id)
    assert pinned_version(db, sub_id) == 2
    trail = await audit_trail(temporal_env.client, db, "subscription", sub_id)
    (renewal,) = [e for e in trail.entries if e.kind == "activity_result" and "renewal_terms" in e.summary]
    assert renewal.payload is not None and renewal.payload["version"] == 2  # the audit trail shows which version the term bills

    with session_scope(db) as session:
        _, live = plans.retire(session, clinic.plan_id)
    assert live == 1
    await temporal_env.fast_forward(handle)
    assert await handle.result() == "ended"  # the paid-for term runs out, then no renewal
    assert [i.total_cents for i in invoices(db, sub_id)] == [4_500, 4_500, 5_200, 5_200]
    assert events(db, sub_id)[-1] == "subscription.ended"
    assert_books_match_gateway(db, sandbox)


async def test_a_retired_plan_refuses_enrollment_naming_the_plan(db: Engine, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment) -> None:
    clinic = make_clinic(db)
    await save_card(db, sandbox_server, clinic)
    with session_scope(db) as session:
        plans.retire(session, clinic.plan_id)
    request = EnrollRequest(clinic.client_id, clinic.pet_id, clinic.plan_id, clinic.location_id, local_today("America/Chicago"))
    with pytest.raises(Refusal, match="retired") as refused:
        await enroll(temporal_env.client, db, request, task_queue=TASK_QUEUE)
    assert (refused.value.field, refused.value.kind) == ("plan_id", "conflict")
    with session_scope(db) as session:
        assert session.get(Subscription, request.resolved_id()) is None


async def test_a_redemption_counts_the_allowance_of_the_version_the_term_bills(
    db: Engine, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    clinic = make_clinic(db, timezone=TZ, price_cents=4_500, term_months=2, auto_renew=True)  # a wellness exam twice a term, 6,500 cents
    await save_card(db, sandbox_server, clinic)
    handle = await start_held(temporal_env, db, clinic, local_today(TZ) - timedelta(days=1))
    sub_id = subscription_id_of(handle)
    try:
        await temporal_env.fast_forward(handle, timedelta(days=3))
        with session_scope(db) as session:  # mid-term: three exams a term from the next renewal, at a new retail value
            _, added = plans.change_terms(session, clinic.plan_id, plans.TermsChange(services=(plans.ServiceTerms("EXAM", "Wellness exam", 7_000, 3),)))
        assert added and pinned_version(db, sub_id) == 1

        assert [redeem(db, sub_id), redeem(db, sub_id)] == [6_500, 6_500]  # the running term's version: two, at its value
        with pytest.raises(Refusal, match="includes 2") as refused:
            redeem(db, sub_id)
        assert (refused.value.field, refused.value.kind) == ("service_code", "conflict")

        await temporal_env.fast_forward(handle, timedelta(days=67))  # the renewal pins version 2
        assert pinned_version(db, sub_id) == 2
        assert redeem(db, sub_id) == 7_000  # the same real-clock term, now on the new version's allowance of three
        with pytest.raises(Refusal, match="includes 3"):
            redeem(db, sub_id)
    finally:
        await handle.terminate("test done")
