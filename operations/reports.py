"""The finance report for a period, per location, in integer cents, computed from the database.

Why from the database and not from workflows: the database is the system of record for money (the
ledger balances to the cent); workflows only orchestrate. Every figure is a plain SQL aggregate a
finance team can re-derive by hand.

What "in the period" means: a row counts when the engine recorded it (its `created_at`) on a day
from `start` to `end` inclusive, in the *location's* time zone, so a clinic in Honolulu and one in
New York both close March at their own local midnight. In production that is when it happened; in
simulated time (the demo) it is the real day the year was played. `outstanding` and `deposits_held`
are balances as they stand now (of invoices issued up to `end`), not flows.

Figures:
* billed: invoices issued (any kind), their totals; `voided` the part of them since voided;
* collected (for invoices): card money (saved card and terminal) kept for invoices, by method, gross
  of later refunds; `credit_applied` is what deposits paid instead; `deposits_paid` is card money
  kept as deposits (client credit); `received` is the two together, all card money that came in;
* declined: declined attempts by decline reason (count, and the cents they asked for);
* recovered: approved saved-card attempts after a failed first one (attempt >= 2: dunning retries
  and retries after a card update or pay-now), by attempt number;
* refunded: completed refunds and voids, by kind;
* outstanding: open invoice balances; deposits: taken in the period, and still held as client credit;
* deferred revenue (yearly plans, `books.recognition`): `deferred` what invoices issued in the period
  credited to it, `recognized` what monthly recognition moved from it to revenue in the period (count:
  postings), `deferred_held` its balance at the end of the period (what is billed but not yet earned,
  less what refunds and credits gave back of it).
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Date, Engine, and_, case, cast, func
from sqlmodel import Session, col, select

from books.invoices import ISSUED_KIND
from books.ledger_days import sums_before, utc_midnight
from books.recognition import RECOGNITION_KIND
from foundation.statuses import DepositStatus, InvoiceStatus, PaymentStatus, RefundStatus
from models.billing import CreditApplication, Deposit, Invoice, Payment, Refund
from models.clinic import Location
from models.ledger import Account, LedgerEntry, LedgerTransaction

KEPT_PAYMENT_STATUSES = (PaymentStatus.APPROVED, PaymentStatus.VOIDED, PaymentStatus.REFUNDED)
MAX_DAYS = 3700

#: The one meaning of the money figures, everywhere they are shown (report, demo, statement).
COLLECTED_LABEL = "collected for invoices"
DEPOSITS_PAID_LABEL = "deposits paid by card"
RECEIVED_LABEL = "total received"


def kept_card_money(purpose: str) -> Any:
    """Card payments (not client credit) whose approved money was kept, for `purpose` (invoice or
    deposit); a later refund or void is counted as refunded, not subtracted here."""
    return and_(
        Payment.purpose == purpose,
        Payment.method != "credit",
        Payment.approved_cents > 0,
        Payment.status.in_(KEPT_PAYMENT_STATUSES),  # type: ignore[attr-defined]
    )


class ReportRefused(ValueError):
    """The period or location is not one a report can be made for."""


@dataclass
class Tally:
    count: int = 0
    cents: int = 0

    def add(self, count: int, cents: int) -> None:
        self.count += int(count)
        self.cents += int(cents or 0)


TALLIES = (
    "billed",
    "voided",
    "collected",
    "credit_applied",
    "deposits_paid",
    "received",
    "declined",
    "recovered",
    "refunded",
    "outstanding",
    "deposits_taken",
    "deposits_held",
    "deferred",
    "recognized",
    "deferred_held",
)


@dataclass
class LocationFigures:
    location_id: str
    name: str
    timezone: str
    billed: Tally = field(default_factory=Tally)
    voided: Tally = field(default_factory=Tally)
    collected: Tally = field(default_factory=Tally)
    collected_by_method: dict[str, Tally] = field(default_factory=dict)
    credit_applied: Tally = field(default_factory=Tally)
    deposits_paid: Tally = field(default_factory=Tally)
    received: Tally = field(default_factory=Tally)
    declined: Tally = field(default_factory=Tally)
    declined_by_reason: dict[str, Tally] = field(default_factory=dict)
    recovered: Tally = field(default_factory=Tally)
    recovered_by_attempt: dict[int, Tally] = field(default_factory=dict)
    refunded: Tally = field(default_factory=Tally)
    refunded_by_kind: dict[str, Tally] = field(default_factory=dict)
    outstanding: Tally = field(default_factory=Tally)
    deposits_taken: Tally = field(default_factory=Tally)
    deposits_held: Tally = field(default_factory=Tally)
    deferred: Tally = field(default_factory=Tally)
    recognized: Tally = field(default_factory=Tally)
    deferred_held: Tally = field(default_factory=Tally)

    def merge(self, other: LocationFigures) -> None:
        for name in TALLIES:
            mine: Tally = getattr(self, name)
            theirs: Tally = getattr(other, name)
            mine.add(theirs.count, theirs.cents)
        for name in ("collected_by_method", "declined_by_reason", "recovered_by_attempt", "refunded_by_kind"):
            mine_map: dict[Any, Tally] = getattr(self, name)
            for key, tally in getattr(other, name).items():
                mine_map.setdefault(key, Tally()).add(tally.count, tally.cents)


@dataclass
class FinanceReport:
    start: date
    end: date
    generated_at: datetime
    locations: list[LocationFigures]
    totals: LocationFigures

    def to_json(self) -> dict[str, Any]:
        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "generated_at": self.generated_at.isoformat(timespec="seconds"),
            "currency": "USD",
            "amounts_in": "cents",
            "locations": [_figures_json(f) for f in self.locations],
            "totals": _figures_json(self.totals),
        }

    def rows(self) -> list[dict[str, Any]]:
        """Tidy rows (one figure each) for CSV: location, metric, key, count, cents."""
        out: list[dict[str, Any]] = []
        for figures in [*self.locations, self.totals]:

            def row(metric: str, tally: Tally, key: str = "", figures: LocationFigures = figures) -> None:
                out.append(
                    {
                        "from": self.start.isoformat(),
                        "to": self.end.isoformat(),
                        "location_id": figures.location_id,
                        "location": figures.name,
                        "metric": metric,
                        "key": key,
                        "count": tally.count,
                        "cents": tally.cents,
                    }
                )

            for name in ("billed", "voided", "collected"):
                row(name, getattr(figures, name))
            for key, tally in sorted(figures.collected_by_method.items()):
                row("collected", tally, key)
            row("credit_applied", figures.credit_applied)
            row("deposits_paid", figures.deposits_paid)
            row("received", figures.received)
            row("declined", figures.declined)
            for key, tally in sorted(figures.declined_by_reason.items()):
                row("declined", tally, key)
            row("recovered", figures.recovered)
            for attempt, tally in sorted(figures.recovered_by_attempt.items()):
                row("recovered", tally, f"attempt {attempt}")
            row("refunded", figures.refunded)
            for key, tally in sorted(figures.refunded_by_kind.items()):
                row("refunded", tally, key)
            for name in ("outstanding", "deposits_taken", "deposits_held", "deferred", "recognized", "deferred_held"):
                row(name, getattr(figures, name))
        return out

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=["from", "to", "location_id", "location", "metric", "key", "count", "cents"])
        writer.writeheader()
        writer.writerows(self.rows())
        return out.getvalue()


def _figures_json(figures: LocationFigures) -> dict[str, Any]:
    data = asdict(figures)
    data["recovered_by_attempt"] = {str(k): v for k, v in sorted(data["recovered_by_attempt"].items())}
    return data


# ============================================================================ the report
def finance_report(engine: Engine, start: date, end: date, *, location_id: str | None = None, reach: frozenset[str] | None = None) -> FinanceReport:
    """The figures of every location (or just `location_id`) for `start`..`end` inclusive; `reach`
    (None: every location) limits them to the locations a caller may see."""
    if end < start:
        raise ReportRefused(f"--to {end} is before --from {start}")
    if (end - start).days > MAX_DAYS:
        raise ReportRefused(f"a report covers at most {MAX_DAYS} days")
    with Session(engine) as session:
        query = select(Location).order_by(Location.name, Location.id)
        if location_id is not None:
            query = query.where(Location.id == location_id)
        if reach is not None:
            query = query.where(col(Location.id).in_(reach))
        locations = list(session.exec(query))
        if location_id is not None and not locations:
            raise ReportRefused(f"unknown location {location_id}")
        figures = {loc.id: LocationFigures(loc.id, loc.name, loc.timezone) for loc in locations}
        if figures:
            _fill(session, figures, start, end)
    totals = LocationFigures("ALL", "all locations", "")
    for one in figures.values():
        totals.merge(one)
    return FinanceReport(start, end, datetime.now(UTC), list(figures.values()), totals)


def _local_day(column: Any) -> Any:
    """The calendar day of a timestamptz in the location's zone (the row's location joined in)."""
    return cast(func.timezone(Location.timezone, column), Date)


def utc_window(start: date, end: date) -> tuple[datetime, datetime]:
    """UTC instants that hold every local day from `start` to `end` in any zone (UTC-12 to UTC+14):
    a range an index on `created_at` can walk, beside the exact local-day test it only narrows."""
    return utc_midnight(start - timedelta(days=1)), utc_midnight(end + timedelta(days=2))


def _fill(session: Session, figures: dict[str, LocationFigures], start: date, end: date) -> None:
    ids = list(figures)
    low, high = utc_window(start, end)

    def within(column: Any) -> Any:
        return and_(column >= low, column < high, _local_day(column).between(start, end))

    # billed and voided
    billed = (
        select(
            Invoice.location_id,
            func.count(),
            func.sum(Invoice.total_cents),
            func.count().filter(Invoice.status == InvoiceStatus.VOID),
            func.sum(case((Invoice.status == InvoiceStatus.VOID, Invoice.total_cents), else_=0)),
        )
        .join(Location, Location.id == Invoice.location_id)
        .where(Invoice.location_id.in_(ids), within(Invoice.created_at))
        .group_by(Invoice.location_id)
    )  # type: ignore[attr-defined]
    for loc, count, cents, void_count, void_cents in session.exec(billed):  # type: ignore[call-overload]
        figures[loc].billed.add(count, cents)
        figures[loc].voided.add(void_count, void_cents)

    # collected, by method (money kept for invoices; later refunds are reported as refunded)
    kept = kept_card_money("invoice")
    collected = (
        select(Payment.location_id, Payment.method, func.count(), func.sum(Payment.approved_cents))
        .join(Location, Location.id == Payment.location_id)
        .where(Payment.location_id.in_(ids), kept, within(Payment.created_at))
        .group_by(Payment.location_id, Payment.method)
    )  # type: ignore[attr-defined]
    for loc, method, count, cents in session.exec(collected):  # type: ignore[call-overload]
        figures[loc].collected.add(count, cents)
        figures[loc].received.add(count, cents)
        figures[loc].collected_by_method.setdefault(method, Tally()).add(count, cents)

    # deposits paid by card (client credit bought with card money)
    deposits_paid = (
        select(Payment.location_id, func.count(), func.sum(Payment.approved_cents))
        .join(Location, Location.id == Payment.location_id)
        .where(Payment.location_id.in_(ids), kept_card_money("deposit"), within(Payment.created_at))
        .group_by(Payment.location_id)
    )  # type: ignore[attr-defined]
    for loc, count, cents in session.exec(deposits_paid):  # type: ignore[call-overload]
        figures[loc].deposits_paid.add(count, cents)
        figures[loc].received.add(count, cents)

    # client credit applied to invoices
    credit = (
        select(Invoice.location_id, func.count(), func.sum(CreditApplication.amount_cents))
        .join(Invoice, Invoice.id == CreditApplication.invoice_id)
        .join(Location, Location.id == Invoice.location_id)
        .where(Invoice.location_id.in_(ids), within(CreditApplication.created_at))
        .group_by(Invoice.location_id)
    )  # type: ignore[attr-defined]
    for loc, count, cents in session.exec(credit):  # type: ignore[call-overload]
        figures[loc].credit_applied.add(count, cents)

    # declined, by reason
    reason = func.coalesce(Payment.decline_reason, "unknown")
    declined = (
        select(Payment.location_id, reason, func.count(), func.sum(Payment.amount_cents))
        .join(Location, Location.id == Payment.location_id)
        .where(Payment.location_id.in_(ids), Payment.status == PaymentStatus.DECLINED, within(Payment.created_at))
        .group_by(Payment.location_id, reason)
    )  # type: ignore[attr-defined]
    for loc, why, count, cents in session.exec(declined):  # type: ignore[call-overload]
        figures[loc].declined.add(count, cents)
        figures[loc].declined_by_reason.setdefault(why, Tally()).add(count, cents)

    # recovered: approved saved-card attempts after a failed first one, by attempt number
    recovered = (
        select(Payment.location_id, Payment.attempt, func.count(), func.sum(Payment.approved_cents))
        .join(Location, Location.id == Payment.location_id)
        .where(Payment.location_id.in_(ids), kept, Payment.method == "card_on_file", Payment.attempt > 1, within(Payment.created_at))
        .group_by(  # type: ignore[attr-defined]
            Payment.location_id, Payment.attempt
        )
    )
    for loc, attempt, count, cents in session.exec(recovered):  # type: ignore[call-overload]
        figures[loc].recovered.add(count, cents)
        figures[loc].recovered_by_attempt.setdefault(int(attempt), Tally()).add(count, cents)

    # refunded, by kind (void or refund)
    refunded = (
        select(Payment.location_id, Refund.kind, func.count(), func.sum(Refund.amount_cents))
        .join(Payment, Payment.id == Refund.payment_id)
        .join(Location, Location.id == Payment.location_id)
        .where(Payment.location_id.in_(ids), Refund.status == RefundStatus.DONE, within(Refund.created_at))
        .group_by(  # type: ignore[attr-defined]
            Payment.location_id, Refund.kind
        )
    )
    for loc, kind, count, cents in session.exec(refunded):  # type: ignore[call-overload]
        figures[loc].refunded.add(count, cents)
        figures[loc].refunded_by_kind.setdefault(kind, Tally()).add(count, cents)

    # outstanding: open balances of invoices issued up to the end of the period, as they stand now
    outstanding = (
        select(Invoice.location_id, func.count(), func.sum(Invoice.total_cents - Invoice.paid_cents))
        .join(Location, Location.id == Invoice.location_id)
        .where(Invoice.location_id.in_(ids), Invoice.status == InvoiceStatus.OPEN, col(Invoice.created_at) < high, _local_day(Invoice.created_at) <= end)
        .group_by(Invoice.location_id)
    )  # type: ignore[attr-defined]
    for loc, count, cents in session.exec(outstanding):  # type: ignore[call-overload]
        figures[loc].outstanding.add(count, cents)

    # deposits taken in the period, and client credit still held now
    taken = (
        select(Deposit.location_id, func.count(), func.sum(Deposit.amount_cents))
        .join(Location, Location.id == Deposit.location_id)
        .where(
            Deposit.location_id.in_(ids),
            within(Deposit.created_at),  # type: ignore[attr-defined]
        )
        .group_by(Deposit.location_id)
    )
    for loc, count, cents in session.exec(taken):  # type: ignore[call-overload]
        figures[loc].deposits_taken.add(count, cents)
    held = (
        select(Deposit.location_id, func.count(), func.sum(Deposit.remaining_cents))
        .where(
            Deposit.location_id.in_(ids),
            Deposit.status == DepositStatus.HELD,
            Deposit.remaining_cents > 0,  # type: ignore[attr-defined]
        )
        .group_by(Deposit.location_id)
    )
    for loc, count, cents in session.exec(held):  # type: ignore[call-overload]
        figures[loc].deposits_held.add(count, cents)

    _fill_deferred(session, figures, start, end)


def _fill_deferred(session: Session, figures: dict[str, LocationFigures], start: date, end: date) -> None:
    """Deferred revenue from the ledger: credited in the period, recognized in it, held at its end."""
    # UTC days before `cut` end before `start` begins in any zone: their daily sums (`books.ledger_days`)
    # count as held; the entries from `cut` on are dated on each location's local day.
    cut = start - timedelta(days=1)
    day = _local_day(LedgerTransaction.created_at)
    deferred = LedgerEntry.account == str(Account.DEFERRED_REVENUE)
    # Billed: issue postings only (a void that puts a refund's unearned part back is not a new bill).
    billed = and_(LedgerTransaction.kind == ISSUED_KIND, LedgerEntry.amount_cents < 0, day.between(start, end))
    flows = (
        select(
            LedgerTransaction.location_id,
            func.count().filter(billed),
            func.sum(case((billed, -LedgerEntry.amount_cents), else_=0)),
            func.count().filter(LedgerTransaction.kind == RECOGNITION_KIND, day.between(start, end)),
            func.sum(case((and_(LedgerTransaction.kind == RECOGNITION_KIND, day.between(start, end)), LedgerEntry.amount_cents), else_=0)),
            func.count().filter(day <= end),
            func.sum(case((day <= end, -LedgerEntry.amount_cents), else_=0)),
        )
        .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
        .join(Location, Location.id == LedgerTransaction.location_id)
        .where(
            col(LedgerTransaction.location_id).in_(list(figures)),
            deferred,
            col(LedgerTransaction.created_at) >= utc_midnight(cut),
            col(LedgerTransaction.created_at) < utc_window(start, end)[1],
            day <= end,
        )
        .group_by(LedgerTransaction.location_id)
    )  # type: ignore[call-overload]
    for loc, credited_count, credited, recognized_count, recognized, held_count, held in session.exec(flows):  # type: ignore[call-overload]
        figures[loc].deferred.add(credited_count, credited)
        figures[loc].recognized.add(recognized_count, recognized)
        figures[loc].deferred_held.add(held_count, held)
    for loc, before in sums_before(session, list(figures), str(Account.DEFERRED_REVENUE), cut).items():
        figures[loc].deferred_held.add(before.entries, before.credit_cents - before.debit_cents)
