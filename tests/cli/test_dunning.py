"""`billing dunning`: the subscriptions past due or suspended now, and why (last decline, attempts,
next retry, card on file masked), from real declines charged by the workflows; no Temporal syntax."""

from __future__ import annotations

from datetime import date, timedelta

import pendulum
from sqlalchemy import Engine
from sqlmodel import Session, select

from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from models.billing import Invoice
from models.subscriptions import Subscription
from tests.cli.conftest import Billing, bad_input, eventually
from tests.support.cards import save_card
from tests.support.clinic import Clinic, make_clinic


def status(engine: Engine, subscription_id: str) -> str | None:
    with Session(engine) as session:
        row = session.get(Subscription, subscription_id)
        return row.status if row else None


async def enroll(billing: Billing, clinic: Clinic, days_ago: int) -> str:
    start = (date.today() - timedelta(days=days_ago)).isoformat()
    answer = await billing("enroll", "--client", clinic.client_id, "--pet", clinic.pet_id, "--plan", clinic.plan_id, "--start-date", start, "--json")
    return str(answer.json()["subscription_id"])


async def test_dunning_lists_past_due_and_suspended_with_reasons(billing: Billing, db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer) -> None:
    soft, hard, gone, fine = (make_clinic(db, price_cents=3_900) for _ in range(4))
    subs = {}
    for clinic, decline in ((soft, "insufficient_funds"), (hard, "expired_card"), (gone, "do_not_honor"), (fine, None)):
        _, card_ref = await save_card(db, sandbox_server, clinic)
        if decline:
            sandbox.decline_next(card_ref, decline, count=5)
        # 20 days late: every retry of the schedule (3, 7, 11, 15 days) is already past, so dunning is over at once
        subs[clinic.location_id] = await enroll(billing, clinic, 20 if clinic is gone else 2)
    await eventually(lambda: status(db, subs[soft.location_id]) == "past_due" and status(db, subs[hard.location_id]) == "past_due")
    await eventually(lambda: status(db, subs[gone.location_id]) == "suspended" and status(db, subs[fine.location_id]) == "active")

    rows = {row["subscription_id"]: row for row in (await billing("dunning", "--json")).json()["subscriptions"]}
    assert set(rows) == {subs[soft.location_id], subs[hard.location_id], subs[gone.location_id]}

    retrying = rows[subs[soft.location_id]]
    assert (retrying["status"], retrying["attempts"], retrying["owed_cents"]) == ("past_due", 1, 3_900)
    assert (retrying["last_decline_reason"], retrying["last_decline_class"]) == ("insufficient_funds", "soft")
    with Session(db) as session:
        invoice = session.exec(select(Invoice).where(Invoice.subscription_id == subs[soft.location_id])).one()
    assert invoice.due_at is not None
    due = pendulum.instance(invoice.due_at).in_timezone("America/Chicago")
    assert pendulum.parse(retrying["next_retry_at"]) == due.add(days=3)  # the plan's first retry
    assert retrying["card"] == "VS ****1111 exp 12/30" and "retry_scheduled" in retrying["why"]

    waiting = rows[subs[hard.location_id]]
    assert (waiting["last_decline_reason"], waiting["last_decline_class"], waiting["next_retry_at"]) == ("expired_card", "hard", None)
    assert "card_needed" in waiting["why"]
    suspended = rows[subs[gone.location_id]]
    assert (suspended["status"], suspended["last_decline_reason"], suspended["next_retry_at"]) == ("suspended", "do_not_honor", None)

    only = (await billing("dunning", "--location", soft.location_id, "--json")).json()["subscriptions"]
    assert [row["subscription_id"] for row in only] == [subs[soft.location_id]]
    assert (await billing("dunning", "--location", fine.location_id, "--json")).json()["subscriptions"] == []

    table = await billing("dunning")
    assert table.exit_code == 0
    assert "insufficient_funds" in table.stdout and "VS ****1111" in table.stdout and "4111111111111111" not in table.stdout
    assert "waits for a new card" in table.stdout and "suspended" in table.stdout

    bad_input(await billing("dunning", "--location", "loc_nope"), "--location", "loc_nope")
