"""`billing enroll / show / pause / resume / change-card / change-plan / pay-now / cancel`: each one's
success, and refusals that exit 1 with one clear line and change nothing."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import Engine, func
from sqlmodel import Session, select

from foundation.ids import new_id
from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from models.billing import Invoice, Payment
from models.db import session_scope
from models.outbox import OutboxEvent
from models.plans import HealthPlan
from models.subscriptions import Subscription
from operations.plans import retire
from tests.cli.conftest import Billing, eventually, refused
from tests.support.cards import save_card
from tests.support.clinic import Clinic, make_clinic


def subscription(engine: Engine, subscription_id: str) -> Subscription | None:
    with Session(engine) as session:
        return session.get(Subscription, subscription_id)


def approved_payments(engine: Engine, subscription_id: str) -> list[Payment]:
    with Session(engine) as session:
        query = select(Payment).where(Payment.subscription_id == subscription_id, Payment.status == "approved")
        return list(session.exec(query))


def event_count(engine: Engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(OutboxEvent)).one()


def snapshot(engine: Engine, subscription_id: str) -> tuple[object, ...]:
    """What a refused command must leave exactly as it was."""
    row = subscription(engine, subscription_id)
    assert row is not None
    with Session(engine) as session:
        invoices = session.exec(select(func.count()).select_from(Invoice)).one()
        payments = session.exec(select(func.count()).select_from(Payment)).one()
    return (row.status, row.card_id, row.plan_id, row.cancel_at_term_end, invoices, payments, event_count(engine))


def add_plan(engine: Engine, location_id: str | None, price_cents: int) -> str:
    plan_id = new_id("plan")
    with session_scope(engine) as session:
        session.add(
            HealthPlan(
                id=plan_id, location_id=location_id, name="Adult Wellness", price_cents=price_cents, auto_renew=False, cancellation_policy="refund_unused"
            )
        )
    return plan_id


async def enrolled(billing: Billing, engine: Engine, clinic: Clinic, card_id: str) -> str:
    """Enroll through the CLI with a start date in the past: the first cycle is billed at once."""
    answer = (
        await billing(
            "enroll",
            "--client",
            clinic.client_id,
            "--pet",
            clinic.pet_id,
            "--plan",
            clinic.plan_id,
            "--start-date",
            (date.today() - timedelta(days=1)).isoformat(),
            "--card",
            card_id,
            "--json",
        )
    ).json()
    assert answer["created"] is True and answer["workflow_id"] == f"subscription:{answer['subscription_id']}"
    assert answer["subscription"]["location_id"] == clinic.location_id  # taken from the client
    sub_id = answer["subscription_id"]
    await eventually(lambda: approved_payments(engine, sub_id) and getattr(subscription(engine, sub_id), "status", None) == "active")
    return sub_id


async def test_enroll_show_and_every_subscription_command(billing: Billing, db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer) -> None:
    clinic = make_clinic(db, price_cents=4_500)
    card, _ = await save_card(db, sandbox_server, clinic)
    other_card, _ = await save_card(db, sandbox_server, clinic, number="5555555555554444", default=False)
    stranger = make_clinic(db)
    strangers_card, _ = await save_card(db, sandbox_server, stranger)

    # enroll: refusals first, and nothing is written
    refused(await billing("enroll", "--client", clinic.client_id, "--pet", clinic.pet_id, "--plan", "plan_nope"), "plan_id", "plan_nope")
    refused(
        await billing("enroll", "--client", clinic.client_id, "--pet", clinic.pet_id, "--plan", clinic.plan_id, "--start-date", "2020-01-01"),
        "--start-date",
        "31 days",
    )
    refused(
        await billing("enroll", "--client", clinic.client_id, "--pet", clinic.pet_id, "--plan", clinic.plan_id, "--card", strangers_card),
        "card_id",
        "another client",
    )
    with Session(db) as session:
        assert session.exec(select(func.count()).select_from(Subscription)).one() == 0

    sub_id = await enrolled(billing, db, clinic, card)
    again = (
        await billing(
            "enroll",
            "--client",
            clinic.client_id,
            "--pet",
            clinic.pet_id,
            "--plan",
            clinic.plan_id,
            "--start-date",
            (date.today() - timedelta(days=1)).isoformat(),
            "--card",
            card,
            "--json",
        )
    ).json()
    assert again["created"] is False and again["subscription_id"] == sub_id

    # show: the workflow's own view plus the attempts
    shown = (await billing("show", sub_id, "--json")).json()
    assert shown["workflow"]["status"] == "active"
    assert shown["workflow"]["balance_cents"] == 0 and shown["workflow"]["next_due_at"]
    assert [(p["attempt"], p["status"], p["approved_cents"]) for p in shown["payments"]] == [(1, "approved", 4_500)]
    table = await billing("show", sub_id)
    assert table.exit_code == 0 and "active" in table.stdout and "$45.00" in table.stdout
    refused(await billing("show", "sub_nope"), "unknown subscription sub_nope")

    # pause / resume, and the refusals of doing either twice
    assert (await billing("pause", sub_id, "--json")).json()["status"] == "paused"
    before = snapshot(db, sub_id)
    refused(await billing("pause", sub_id), "only an active subscription can be paused")
    assert snapshot(db, sub_id) == before
    assert (await billing("resume", sub_id, "--json")).json()["status"] == "active"
    before = snapshot(db, sub_id)
    refused(await billing("resume", sub_id), "only a paused subscription can be resumed")
    assert snapshot(db, sub_id) == before

    # change-card: another client's card is refused before the workflow is asked
    refused(await billing("change-card", sub_id, strangers_card), "card_id", strangers_card)
    assert snapshot(db, sub_id) == before
    changed = (await billing("change-card", sub_id, other_card, "--json")).json()
    assert changed["accepted"] and "card changed" in changed["message"]
    assert getattr(subscription(db, sub_id), "card_id", None) == other_card

    # change-plan: unknown and other-location plans refused; a plan of this location accepted
    before = snapshot(db, sub_id)
    refused(await billing("change-plan", sub_id, "plan_nope"), "unknown or inactive plan plan_nope")
    refused(await billing("change-plan", sub_id, add_plan(db, stranger.location_id, 6_000)), "not offered at location")
    retired = add_plan(db, clinic.location_id, 5_000)
    with session_scope(db) as session:
        retire(session, retired)
    before = snapshot(db, sub_id)  # the retirement's own event counted
    refused(await billing("change-plan", sub_id, retired), f"plan_id: plan {retired} was retired on")  # as the API's 409 reads
    assert snapshot(db, sub_id) == before
    bigger = add_plan(db, clinic.location_id, 6_000)
    assert (await billing("change-plan", sub_id, bigger, "--json")).json()["accepted"] is True
    assert getattr(subscription(db, sub_id), "plan_id", None) == bigger

    # pay-now with nothing open is refused by the workflow's validator
    before = snapshot(db, sub_id)
    refused(await billing("pay-now", sub_id), "nothing to pay")
    assert snapshot(db, sub_id) == before

    # cancel at term end, then now; afterwards every command is refused
    term_end = (await billing("cancel", sub_id, "--at-term-end", "--json")).json()
    assert term_end["message"] == "will cancel at the end of the current term"
    cancelled = (await billing("cancel", sub_id, "--reason", "moving away", "--json")).json()
    assert cancelled["status"] == "cancelled" and "settlement" in cancelled["message"]
    await eventually(lambda: getattr(subscription(db, sub_id), "status", None) == "cancelled")
    before = snapshot(db, sub_id)
    refused(await billing("cancel", sub_id), "refused")
    refused(await billing("pause", sub_id, "--json"))
    assert snapshot(db, sub_id) == before
    refused(await billing("pause", "sub_nope"), "unknown subscription sub_nope")


async def test_pay_now_collects_a_declined_invoice_and_json_errors(
    billing: Billing, db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer
) -> None:
    clinic = make_clinic(db, price_cents=3_900)
    _, card_ref = await save_card(db, sandbox_server, clinic)
    sandbox.decline_next(card_ref, "insufficient_funds", count=1)
    answer = (
        await billing(
            "enroll",
            "--client",
            clinic.client_id,
            "--pet",
            clinic.pet_id,
            "--plan",
            clinic.plan_id,
            "--start-date",
            (date.today() - timedelta(days=2)).isoformat(),
            "--json",
        )
    ).json()
    sub_id = answer["subscription_id"]

    await eventually(lambda: getattr(subscription(db, sub_id), "status", None) == "past_due")
    shown = (await billing("show", sub_id, "--json")).json()
    assert shown["workflow"]["balance_cents"] == 3_900
    assert shown["workflow"]["open_invoices"][0]["last_decline_reason"] == "insufficient_funds"

    paid = (await billing("pay-now", sub_id, "--json")).json()
    assert paid["accepted"] and paid["message"] == "1 open invoice(s) will be charged now"
    await eventually(lambda: getattr(subscription(db, sub_id), "status", None) == "active")  # recovered: the workflow sleeps
    assert [p.attempt for p in approved_payments(db, sub_id)] == [2]
    trail = (await billing("history", "subscription", sub_id, "--json")).json()["entries"]
    requests = {e["attempt"]: e["trigger"] for e in trail if e["kind"] == "charge_requested"}
    assert requests[1] == "cycle due" and requests[2].startswith("update pay_now by billing-cli:")
    assert [e["summary"] for e in trail if e["kind"] == "update"] == ["update pay_now() accepted"]

    # --json refusals also answer in JSON on stdout
    run = await billing("pay-now", "sub_nope", "--json")
    refused(run, "unknown subscription")
    assert run.stdout.strip().startswith("{") and '"not_found"' in run.stdout
