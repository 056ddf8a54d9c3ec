"""`billing clients find` and `billing statement`: a client found by name or email, then their year
invoice by invoice (a plan's cycles paid by client credit and by card after a decline, a refund,
an open counter invoice), each amount once, with totals that match the books."""

from __future__ import annotations

import csv
import io
from datetime import date

from sqlalchemy import Engine, func
from sqlmodel import Session, select
from temporalio.testing import WorkflowEnvironment

from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from models.billing import Invoice, Payment
from models.clinic import Client
from models.db import session_scope
from operations.payments import CounterLine, create_counter_invoice_for
from tests.cli.conftest import Billing, bad_input
from tests.subscriptions.helpers import start, subscription_id_of
from tests.support.cards import save_card
from tests.support.clinic import make_clinic


async def test_find_a_client_then_their_statement(
    billing: Billing, db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment
) -> None:
    clinic = make_clinic(db, price_cents=4_500, term_months=2, auto_renew=False)
    with session_scope(db) as session:
        client = session.get(Client, clinic.client_id)
        assert client is not None
        client.name, client.email = "Ada Lovelace", "ada@analytical.example"
        session.add(client)
    other = make_clinic(db)  # Dana Whitfield, another location

    found = (await billing("clients", "find", "LOVE", "--json")).json()["clients"]
    assert [c["client_id"] for c in found] == [clinic.client_id]
    assert [c["client_id"] for c in (await billing("clients", "find", "analytical.example", "--json")).json()["clients"]] == [clinic.client_id]
    table = await billing("clients", "find", "lovelace")
    assert table.exit_code == 0 and clinic.client_id in table.stdout and other.client_id not in table.stdout
    bad_input(await billing("clients", "find", "  "), "TEXT")

    card, card_ref = await save_card(db, sandbox_server, clinic)
    assert (await billing("deposit", clinic.client_id, "--card", card, "--amount", "60.00", "--json")).json()["status"] == "approved"
    sandbox.decline_next(card_ref, "insufficient_funds", count=1)
    handle = await start(temporal_env, db, clinic, date(2027, 3, 10))  # two cycles, due 2027-03-10 and 2027-04-10
    assert await handle.result() == "ended"
    with Session(db) as session:
        card_paid = session.exec(select(Payment).where(Payment.subscription_id == subscription_id_of(handle), Payment.status == "approved")).all()
    assert len(card_paid) == 1
    assert (await billing("refund", card_paid[0].id, "--amount", "10.00", "--json")).json()["amount_cents"] == 1_000
    create_counter_invoice_for(
        db, client_id=clinic.client_id, location_id=clinic.location_id, lines=[CounterLine("Dental", 12_000), CounterLine("X-ray", 3_000)]
    )

    year = (await billing("statement", clinic.client_id, "--year", "2027", "--json")).json()
    assert year["name"] == "Ada Lovelace" and year["amounts_in"] == "cents"
    lines = year["invoices"]
    assert [line["issued_on"] for line in lines] == ["2027-03-10", "2027-04-10"]
    assert all(line["total_cents"] == 4_500 and line["balance_cents"] == 0 for line in lines)
    # $60 of credit pays the first cycle and $15 of the second; the card pays the rest after a decline
    assert [(line["credit_cents"], line["paid_cents"], line["refunded_cents"]) for line in lines] == [(4_500, 0, 0), (1_500, 3_000, 1_000)]
    assert year["totals"] == {"total_cents": 9_000, "paid_cents": 3_000, "refunded_cents": 1_000, "credit_cents": 6_000, "balance_cents": 0}
    with Session(db) as session:  # the totals are the books' own
        billed = session.exec(select(func.sum(Invoice.total_cents)).where(Invoice.subscription_id == subscription_id_of(handle))).one()
        kept = session.exec(
            select(func.sum(Payment.approved_cents)).where(Payment.subscription_id == subscription_id_of(handle), Payment.method != "credit")
        ).one()
    assert (billed, kept) == (9_000, 3_000)

    this_year = (await billing("statement", clinic.client_id, "--year", str(date.today().year), "--json")).json()
    assert [(line["description"], line["total_cents"], line["balance_cents"]) for line in this_year["invoices"]] == [("Dental (+1 more)", 15_000, 15_000)]

    exported = await billing("statement", clinic.client_id, "--year", "2027", "--csv")
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [(r["date"], r["total"], r["paid"], r["refunded"], r["credit_applied"], r["balance"]) for r in rows] == [
        ("2027-03-10", "45.00", "0.00", "0.00", "45.00", "0.00"),
        ("2027-04-10", "45.00", "30.00", "10.00", "15.00", "0.00"),
        ("", "90.00", "30.00", "10.00", "60.00", "0.00"),
    ]
    shown = await billing("statement", clinic.client_id, "--year", "2027")
    assert shown.exit_code == 0 and "$90.00" in shown.stdout and "$30.00" in shown.stdout and "TOTAL" in shown.stdout

    bad_input(await billing("statement", "cli_nope"), "cli_nope", "billing clients find")
    bad_input(await billing("statement", clinic.client_id, "--year", "1999"), "--year")
    assert (await billing("statement", clinic.client_id, "--year", "soon")).exit_code == 2  # typer's own usage error
