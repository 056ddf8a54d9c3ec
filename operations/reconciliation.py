"""Reconciling our books against the gateway's own list of transactions, to the cent.

`double_charges` is counted from the gateway's list alone (never from our tables), so a bug in our
bookkeeping cannot hide a double charge: for each of our references (the invoice id we send as
`transactionReference`), the money kept by approved sales must not exceed the largest amount any
one of them asked for (a partial approval plus a sale for the balance is fine; two full sales are not).
A tip or surcharge the customer added at the terminal is money asked for too, not a second charge.

This whole-list comparison is the demo's, the bench's and the tests' check of everything at once;
what finance runs for a period (CLI, API, the daily janitor) is `operations.period_reconciliation`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, select

from books.ledger import is_balanced
from foundation.money import format_usd
from foundation.statuses import PaymentStatus, RefundStatus
from models.billing import Payment, Refund

SALE = "CreditSale"
GIVE_BACK = ("CreditReturn", "Void")
APPROVED = ("approved", "partial")  # the sandbox marks a partial approval "partial"


@dataclass(frozen=True)
class Reconciliation:
    double_charges: int
    mismatches: list[str] = field(default_factory=list)
    ledger_balanced: bool = True
    compared: int = 0  # transactions compared (sales, then refunds and voids), on either side

    @property
    def reconciled(self) -> bool:
        return not self.mismatches


def count_double_charges(gateway_rows: Iterable[Mapping[str, Any]]) -> int:
    kept: dict[str, int] = defaultdict(int)
    largest_ask: dict[str, int] = defaultdict(int)
    for row in gateway_rows:
        if row["transaction_type"] != SALE or row["status"] not in APPROVED or not row.get("reference"):
            continue
        reference = str(row["reference"])
        extras = int(row.get("tip_cents") or 0) + int(row.get("surcharge_cents") or 0)
        kept[reference] += 0 if row["voided"] else int(row["approved_cents"]) - extras
        largest_ask[reference] = max(largest_ask[reference], int(row["amount_cents"] or 0))
    return sum(1 for reference, cents in kept.items() if cents > largest_ask[reference])


def reconcile(engine: Engine, gateway_rows: list[Mapping[str, Any]], *, only: Collection[str] | None = None) -> Reconciliation:
    """Compare every approved sale and every refund or void, both ways, by external transaction id
    (only those of `only`, when given: a day's or a location's)."""
    ours_sales, ours_back = _our_transactions(engine)
    if only is not None:
        wanted = set(only)
        gateway_rows = [r for r in gateway_rows if r["external_transaction_id"] in wanted]
        ours_sales = {k: v for k, v in ours_sales.items() if k in wanted}
        ours_back = {k: v for k, v in ours_back.items() if k in wanted}
    theirs_sales = {r["external_transaction_id"]: int(r["approved_cents"]) for r in gateway_rows if r["transaction_type"] == SALE and r["status"] in APPROVED}
    theirs_back = {
        r["external_transaction_id"]: int(r["approved_cents"] if r["transaction_type"] == "Void" else r["amount_cents"] or 0)
        for r in gateway_rows
        if r["transaction_type"] in GIVE_BACK and r["status"] in APPROVED
    }
    mismatches = _diff("sale", ours_sales, theirs_sales) + _diff("refund/void", ours_back, theirs_back)
    with Session(engine) as session:
        balanced = is_balanced(session)
    compared = len(ours_sales.keys() | theirs_sales.keys()) + len(ours_back.keys() | theirs_back.keys())
    return Reconciliation(count_double_charges(gateway_rows), mismatches, balanced, compared)


def _our_transactions(engine: Engine) -> tuple[dict[str, int], dict[str, int]]:
    with Session(engine) as session:
        sales = {
            p.external_transaction_id: p.approved_cents
            for p in session.exec(select(Payment).where(Payment.method != "credit", Payment.status.in_((PaymentStatus.APPROVED, PaymentStatus.VOIDED))))  # type: ignore[attr-defined]
        }
        back = {r.external_transaction_id: r.amount_cents for r in session.exec(select(Refund).where(Refund.status == RefundStatus.DONE))}
    return sales, back


def _diff(kind: str, ours: dict[str, int], theirs: dict[str, int]) -> list[str]:
    problems = []
    for external_id in sorted(set(ours) | set(theirs)):
        mine, gateway = ours.get(external_id), theirs.get(external_id)
        if mine != gateway:
            problems.append(f"{kind} {external_id}: ours {_shown(mine)}, gateway {_shown(gateway)}")
    return problems


def _shown(cents: int | None) -> str:
    return "none" if cents is None else format_usd(cents)
