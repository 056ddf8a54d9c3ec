"""What one cycle's charge costs the database, on real PostgreSQL and the sandbox over HTTP.

Every statement of the charge path must come from SQLAlchemy's compiled cache once the worker has
charged before: a statement SQLAlchemy cannot cache is compiled again on every charge (as a ledger
posting built as a VALUES list would be). The first attempt of a new cycle also keeps to its
statement budget, the figure `billing bench` reports as "SQL statements" per cycle.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

from sqlalchemy import Engine, event
from sqlmodel import Session, select
from temporalio.testing import ActivityEnvironment

from activities.subscriptions import SubscriptionActivities
from bench.charge_cost import first_attempt
from foundation.contracts import SubscriptionInput
from foundation.settings import SANDBOX_OID, SANDBOX_TOKEN
from gravity.directory import GatewayDirectory
from gravity.sandbox.server import SandboxServer
from models.billing import Deposit, Invoice
from models.db import session_scope
from models.subscriptions import Subscription
from operations.enrollment import EnrollRequest, record_enrollment
from tests.support.cards import save_card
from tests.support.clinic import make_clinic

FIRST_ATTEMPT_STATEMENTS = 11  # 6 invoice the cycle and write the attempt; 5 record the approval


@contextmanager
def statements_of(engine: Engine) -> Iterator[list[tuple[str, bool]]]:
    """(SQL, came from the compiled cache) of every statement `engine` runs inside the block."""
    seen: list[tuple[str, bool]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        seen.append((" ".join(statement.split())[:120], context.cache_hit == context.dialect.CACHE_HIT))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def _enrolled(engine: Engine, server: SandboxServer) -> SubscriptionInput:
    clinic = make_clinic(engine)
    card_id, _ = await save_card(engine, server, clinic)
    request = EnrollRequest(clinic.client_id, clinic.pet_id, clinic.plan_id, clinic.location_id, date(2026, 11, 1), card_id=card_id)
    workflow_input, _ = record_enrollment(engine, request)
    return workflow_input


async def test_a_charge_runs_only_cached_statements_within_its_budget(db: Engine, sandbox: Any, sandbox_server: SandboxServer) -> None:
    warm, measured = await _enrolled(db, sandbox_server), await _enrolled(db, sandbox_server)
    gateways = GatewayDirectory(sandbox_server.base_url, {SANDBOX_OID: SANDBOX_TOKEN}, timeout=5.0)
    activities = SubscriptionActivities(db, gateways)
    try:
        first = await ActivityEnvironment().run(activities.charge_cycle, first_attempt(warm))
        assert first.outcome == "paid"
        with statements_of(db) as seen:
            outcome = await ActivityEnvironment().run(activities.charge_cycle, first_attempt(measured))
    finally:
        await gateways.aclose()

    assert outcome.outcome == "paid" and outcome.charged_cents == 4_500
    compiled_again = [sql for sql, cached in seen if not cached]
    assert compiled_again == [], f"compiled on every charge (not cacheable): {compiled_again}"
    assert len(seen) <= FIRST_ATTEMPT_STATEMENTS, "\n".join(sql for sql, _ in seen)


async def test_credit_the_client_holds_is_applied_before_the_card_is_charged(db: Engine, sandbox: Any, sandbox_server: SandboxServer) -> None:
    """The statement that advances the subscription also tells whether the client holds credit
    (most hold none, and then deposits are not read): when it does, the credit pays first."""
    workflow_input = await _enrolled(db, sandbox_server)
    with session_scope(db) as session:
        subscription = session.get(Subscription, workflow_input.setup.subscription_id)
        assert subscription is not None
        session.add(
            Deposit(
                id="dep_test_credit",
                client_id=subscription.client_id,
                location_id=subscription.location_id,
                amount_cents=1_000,
                remaining_cents=1_000,
            )
        )
    gateways = GatewayDirectory(sandbox_server.base_url, {SANDBOX_OID: SANDBOX_TOKEN}, timeout=5.0)
    try:
        outcome = await ActivityEnvironment().run(SubscriptionActivities(db, gateways).charge_cycle, first_attempt(workflow_input))
    finally:
        await gateways.aclose()

    assert (outcome.outcome, outcome.charged_cents, outcome.balance_cents) == ("paid", 3_500, 0)
    with Session(db) as session:
        credit = session.get(Deposit, "dep_test_credit")
        assert credit is not None and (credit.remaining_cents, credit.status) == (0, "used")
        invoice = session.exec(select(Invoice).where(Invoice.id == outcome.invoice_id)).one()
        assert (invoice.status, invoice.paid_cents) == ("paid", 4_500)
