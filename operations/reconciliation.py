"""Reconciling our books against the gateway's own list of transactions, to the cent.

`double_charges` is counted from the gateway's list alone (never from our tables), so a bug in our
bookkeeping cannot hide a double charge: for each of our references (the invoice id we send as
`transactionReference`), the money kept by approved sales must not exceed the largest amount any
one of them asked for (a partial approval plus a sale for the balance is fine; two full sales are not).
A tip or surcharge the customer added at the terminal is money asked for too, not a second charge.

`reconcile_day` checks one day the other way round, with what production emergepay offers (a lookup
per external transaction id; the gateway's full list is a sandbox control route): every movement our
books recorded that day is looked up and compared to the cent.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict, astuple, dataclass, field, fields, replace
from datetime import date
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from books.ledger import is_balanced
from foundation.money import format_usd
from foundation.statuses import PaymentStatus, RefundStatus
from gravity.directory import GatewayDirectory
from gravity.errors import GravityError
from models.billing import Payment, Refund
from operations.finance_scope import checked_day, local_day_bounds, locations_in_reach

SALE = "CreditSale"
GIVE_BACK = ("CreditReturn", "Void")
APPROVED = ("approved", "partial")  # the sandbox marks a partial approval "partial"
LOOKUP_CONCURRENCY = 8  # lookups in flight at once against one gateway


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


# ============================================================================ one day, by lookup
@dataclass(frozen=True)
class Movement:
    """One sale, void or refund the books recorded, and what the gateway says of it."""

    external_transaction_id: str
    kind: str  # sale | void | refund
    location_id: str
    ours_cents: int
    gateway_cents: int | None = None
    status: str = "unchecked"  # matched | differs | unknown_at_gateway | unreachable


@dataclass(frozen=True)
class DayReconciliation:
    day: date
    location_id: str | None
    movements: list[Movement]

    @property
    def differences(self) -> list[Movement]:
        return [m for m in self.movements if m.status != "matched"]

    def to_json(self) -> dict[str, Any]:
        return {
            "date": self.day.isoformat(),
            "location_id": self.location_id,
            "amounts_in": "cents",
            "checked": len(self.movements),
            "matched": len(self.movements) - len(self.differences),
            "reconciled": not self.differences,
            "differences": [asdict(m) for m in self.differences],
            "movements": [asdict(m) for m in self.movements],
        }

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(("date", *(f.name for f in fields(Movement))))
        for m in self.movements:
            writer.writerow((self.day.isoformat(), *("" if v is None else v for v in astuple(m))))
        return out.getvalue()


async def reconcile_day(
    engine: Engine,
    gateways: GatewayDirectory,
    day: date,
    *,
    location_id: str | None = None,
    reach: frozenset[str] | None = None,
    concurrency: int = LOOKUP_CONCURRENCY,
) -> DayReconciliation:
    """Our sales, voids and refunds of `day` (each location's own day), each looked up at the
    gateway by its external transaction id, the one lookup emergepay offers, and compared to the cent."""
    checked_day(day)
    located = await asyncio.to_thread(movements_on, engine, day, location_id, reach)
    gate = asyncio.Semaphore(concurrency)

    async def check(movement: Movement, oid: str) -> Movement:
        async with gate:
            try:
                found = await gateways.for_oid(oid).lookup(movement.external_transaction_id)
            except GravityError:
                return replace(movement, status="unreachable")
        if found is None:
            return replace(movement, status="matched" if movement.ours_cents == 0 else "unknown_at_gateway")
        theirs = found.approved_cents if found.approved else 0
        return replace(movement, gateway_cents=theirs, status="matched" if theirs == movement.ours_cents else "differs")

    checked = await asyncio.gather(*(check(movement, oid) for movement, oid in located))
    return DayReconciliation(day, location_id, list(checked))


def movements_on(engine: Engine, day: date, location_id: str | None, reach: frozenset[str] | None) -> list[tuple[Movement, str]]:
    """Every card sale (declines included: the gateway must not have approved them) and every
    finished void or refund recorded on `day` in its location's zone, with the merchant's OID."""
    out: list[tuple[Movement, str]] = []
    with Session(engine) as session:
        for location in locations_in_reach(session, location_id, reach):
            start, end = local_day_bounds(day, location.timezone)
            payments = select(Payment).where(
                Payment.location_id == location.id,
                Payment.method != "credit",
                col(Payment.status).in_((PaymentStatus.APPROVED, PaymentStatus.VOIDED, PaymentStatus.REFUNDED, PaymentStatus.DECLINED)),
                col(Payment.created_at) >= start,
                col(Payment.created_at) < end,
            )
            for p in session.exec(payments.order_by(col(Payment.created_at), col(Payment.id))):
                out.append((Movement(p.external_transaction_id, "sale", location.id, p.approved_cents), location.gravity_oid))
            refunds = (
                select(Refund)
                .join(Payment, col(Payment.id) == Refund.payment_id)
                .where(
                    Payment.location_id == location.id,
                    col(Refund.status).in_((RefundStatus.DONE, RefundStatus.FAILED)),
                    col(Refund.created_at) >= start,
                    col(Refund.created_at) < end,
                )
            )
            for r in session.exec(refunds.order_by(col(Refund.created_at), col(Refund.id))):
                cents = r.amount_cents if r.status == RefundStatus.DONE else 0
                out.append((Movement(r.external_transaction_id, r.kind, location.id, cents), location.gravity_oid))
    return out
