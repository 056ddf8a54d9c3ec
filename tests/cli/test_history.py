"""`billing history`: a subscription's audit trail across its whole continue-as-new chain, checked
against the ledger to the cent, exported as JSON and CSV."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio.testing import WorkflowEnvironment

from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from models.billing import Payment
from models.ledger import LedgerEntry, LedgerTransaction
from tests.cli.conftest import Billing, refused
from tests.subscriptions.helpers import assert_books_match_gateway, start, subscription_id_of
from tests.support.cards import save_card
from tests.support.clinic import make_clinic


def approved_card_payments(engine: Engine, subscription_id: str) -> dict[str, Payment]:
    with Session(engine) as session:
        rows = session.exec(select(Payment).where(Payment.subscription_id == subscription_id, Payment.status == "approved"))
        return {p.external_transaction_id: p for p in rows if p.method != "credit"}


def ledger_amount(engine: Engine, reference: str) -> int | None:
    """The debit total of the ledger transaction posted under `reference` (None if there is none)."""
    with Session(engine) as session:
        txn = session.exec(select(LedgerTransaction).where(LedgerTransaction.reference == reference)).first()
        if txn is None:
            return None
        lines = session.exec(select(LedgerEntry).where(LedgerEntry.transaction_id == txn.id)).all()
        assert sum(line.amount_cents for line in lines) == 0
        return sum(line.amount_cents for line in lines if line.amount_cents > 0)


async def test_history_of_a_declined_and_recovered_subscription_matches_the_ledger(
    billing: Billing, db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    # 13 monthly cycles: a run holds 12, so the trail spans a continue-as-new chain of two runs.
    clinic = make_clinic(db, price_cents=4_500, term_months=13, auto_renew=False)
    _, card_ref = await save_card(db, sandbox_server, clinic)
    sandbox.decline_next(card_ref, "insufficient_funds", count=1)
    handle = await start(temporal_env, db, clinic, date(2027, 3, 10))  # time skips: 13 cycles and a retry
    assert await handle.result() == "ended"
    sub_id = subscription_id_of(handle)

    export = tmp_path / "history.csv"
    trail = (await billing("history", "subscription", sub_id, "--json", "--csv", str(export))).json()
    entries = trail["entries"]

    # every run of the continue-as-new chain was read
    [workflow] = trail["workflows"]
    assert workflow["workflow_id"] == f"subscription:{sub_id}" and workflow["status"] == "completed"
    assert len(workflow["run_ids"]) == 2 and len(set(workflow["run_ids"])) == len(workflow["run_ids"])
    assert {e["run_id"] for e in entries if e["source"] == "temporal"} == set(workflow["run_ids"])
    assert sum(e["kind"] == "continued_as_new" for e in entries) == len(workflow["run_ids"]) - 1

    # the decline, the dunning retry that recovered it, and what triggered each
    charges = [e for e in entries if e["kind"] == "charge_result"]
    requests = [e for e in entries if e["kind"] == "charge_requested"]
    assert [(c["attempt"], c["status"], c["reason"]) for c in charges] == [
        (1, "declined", "insufficient_funds"),
        (2, "paid", None),
        *[(1, "paid", None)] * 12,
    ]
    assert [r["trigger"] for r in requests] == ["cycle due", "dunning retry", *["cycle due"] * 12]
    assert charges[0]["invoice_id"] == charges[1]["invoice_id"] != charges[2]["invoice_id"]
    assert {"past_due", "active", "ended"} <= {e["status"] for e in entries if e["kind"] == "status"}
    assert any(e["kind"] == "event:payment.retry_scheduled" for e in entries)
    assert any(e["kind"] == "payment" and e["status"] == "declined" and e["reason"] == "insufficient_funds" for e in entries)

    # every approved charge in the history is one payment row and one ledger transaction, to the cent
    paid = approved_card_payments(db, sub_id)
    approved = [c for c in charges if c["amount_cents"]]
    assert sorted(c["external_transaction_id"] for c in approved) == sorted(paid)
    for charge in approved:
        payment = paid[charge["external_transaction_id"]]
        assert charge["amount_cents"] == payment.approved_cents == 4_500
        assert charge["invoice_id"] == payment.invoice_id and charge["attempt"] == payment.attempt
        assert ledger_amount(db, f"payment:{payment.external_transaction_id}:approved") == charge["amount_cents"]
        booked = [e for e in entries if e["kind"] == "ledger:payment_approved" and e["external_transaction_id"] == payment.external_transaction_id]
        assert [e["amount_cents"] for e in booked] == [charge["amount_cents"]]
    assert_books_match_gateway(db, sandbox)

    # one timeline: each source in its own time order, each book entry after the workflow event behind it
    for source in ("temporal", "database"):
        stamps = [e["at"] for e in entries if e["source"] == source]
        assert stamps == sorted(stamps)
    kinds = [(e["kind"], e["attempt"], e["status"]) for e in entries if e["kind"] in ("charge_requested", "charge_result", "payment")]
    assert kinds == [
        ("charge_requested", 1, None),
        ("charge_result", 1, "declined"),
        ("payment", 1, "declined"),
        ("charge_requested", 2, None),
        ("charge_result", 2, "paid"),
        ("payment", 2, "approved"),
        *[("charge_requested", 1, None), ("charge_result", 1, "paid"), ("payment", 1, "approved")] * 12,
    ]

    # the CSV holds the same lines
    with export.open(newline="") as handle_csv:
        rows = list(csv.DictReader(handle_csv))
    assert len(rows) == len(entries)
    assert [(r["kind"], r["external_transaction_id"]) for r in rows] == [(e["kind"], e["external_transaction_id"] or "") for e in entries]
    assert {"at", "source", "kind", "attempt", "amount_cents", "reason", "trigger"} <= set(rows[0])

    # the same trail by invoice and by client; the rich table for people
    first_invoice = charges[0]["invoice_id"]
    by_invoice = (await billing("history", "invoice", first_invoice, "--json")).json()["entries"]
    assert [(c["attempt"], c["status"]) for c in by_invoice if c["kind"] == "charge_result"] == [(1, "declined"), (2, "paid")]
    assert all(e["invoice_id"] in (first_invoice, None) for e in by_invoice if e["source"] == "temporal")
    by_client = (await billing("history", "client", clinic.client_id, "--json")).json()
    assert len([e for e in by_client["entries"] if e["kind"] == "charge_result"]) == 14
    table = await billing("history", "subscription", sub_id)
    assert table.exit_code == 0 and "insufficient_funds" in table.stdout and "dunning retry" in table.stdout

    refused(await billing("history", "subscription", "sub_nope"), "unknown subscription sub_nope")
    refused(await billing("history", "pet", sub_id), "SUBJECT must be one of")
