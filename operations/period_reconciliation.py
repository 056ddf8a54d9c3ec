"""Our books against the gateway over a period: the one reconciliation the CLI, the API and the
daily janitor run.

Every card sale (declines included: the gateway must not have approved them), void and refund our
books recorded in the period, on each location's own calendar, is looked up at the gateway by its
external transaction id (the one lookup production emergepay offers) and compared to the cent.
Where the gateway also lists its transactions (the sandbox does; emergepay does not), that list is
read for the same dates too: an approved transaction our books never recorded is a difference, and
double charges are counted from the gateway's list alone (`reconciliation.count_double_charges`).
When the answer covers some locations only and their merchant OID is shared with others, the list's
rows our books lack name no location, so only an all-locations answer reports them, and double
charges are counted over the asked locations' own sales (a token never sees another's).
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, astuple, dataclass, fields, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pendulum
from sqlalchemy import ColumnElement, Engine, and_, or_
from sqlmodel import Session, col, select

from foundation.statuses import SETTLED_PAYMENT_STATUSES, SETTLED_REFUND_STATUSES, PaymentStatus, RefundStatus
from gravity.directory import GatewayDirectory
from gravity.errors import GravityError
from models.billing import Payment, Refund
from models.clinic import Location
from operations.finance_scope import checked_period, local_day_bounds, locations_in_reach
from operations.reconciliation import APPROVED, GIVE_BACK, SALE, count_double_charges

LOOKUP_CONCURRENCY = 8  # lookups in flight at once against one gateway
KINDS = ("sale", "void", "refund")
#: Our payment statuses the gateway has an answer for (pending ones are still being decided).
#: Settled payments, and those Gravity never answered (`unknown`): the gateway may know what we do not.
RECONCILED_PAYMENTS = (*SETTLED_PAYMENT_STATUSES, PaymentStatus.UNKNOWN)
Progress = Callable[[int, int], None]  # (looked up so far, to look up)
Span = Callable[[Location], tuple[date, date]]  # the first and last local day covered at a location


@dataclass(frozen=True)
class Movement:
    """One sale, void or refund on either side, and what the other side says of it."""

    booked_on: date  # the location's local date: ours when we recorded it, else the gateway's stamp
    external_transaction_id: str
    kind: str  # sale | void | refund
    location_id: str
    ours_cents: int | None  # None: our books never recorded it
    gateway_cents: int | None = None  # None: the gateway does not know it (or was not reached)
    status: str = "unchecked"  # matched | differs | unknown_at_gateway | not_in_books | unreachable


@dataclass(frozen=True)
class KindTotal:
    kind: str
    ours_cents: int
    gateway_cents: int

    @property
    def matched(self) -> bool:
        return self.ours_cents == self.gateway_cents


@dataclass(frozen=True)
class PeriodReconciliation:
    start: date
    end: date
    location_id: str | None
    movements: list[Movement]
    gateway_listed: bool  # whether the gateway's own list was read (strays and double charges)
    double_charges: int | None = None  # None: the gateway offers no list to count them from

    @property
    def differences(self) -> list[Movement]:
        return [m for m in self.movements if m.status != "matched"]

    @property
    def reconciled(self) -> bool:
        return not self.differences and not self.double_charges

    @property
    def totals(self) -> list[KindTotal]:
        """Ours and the gateway's sums per kind (what either side does not know counts 0)."""
        totals = []
        for kind in KINDS:
            these = [m for m in self.movements if m.kind == kind]
            totals.append(KindTotal(kind, sum(m.ours_cents or 0 for m in these), sum(m.gateway_cents or 0 for m in these)))
        return totals

    def to_json(self) -> dict[str, Any]:
        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "date": self.start.isoformat() if self.start == self.end else None,
            "location_id": self.location_id,
            "amounts_in": "cents",
            "gateway_listed": self.gateway_listed,
            "checked": len(self.movements),
            "matched": len(self.movements) - len(self.differences),
            "double_charges": self.double_charges,
            "reconciled": self.reconciled,
            "totals": [{**asdict(t), "matched": t.matched} for t in self.totals],
            "differences": [asdict(m) for m in self.differences],
            "movements": [asdict(m) for m in self.movements],
        }

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(tuple(f.name for f in fields(Movement)))
        for m in self.movements:
            writer.writerow(tuple("" if v is None else v for v in astuple(m)))
        return out.getvalue()


async def reconcile_period(
    engine: Engine,
    gateways: GatewayDirectory,
    start: date,
    end: date,
    *,
    location_id: str | None = None,
    reach: frozenset[str] | None = None,
    progress: Progress | None = None,
    concurrency: int = LOOKUP_CONCURRENCY,
) -> PeriodReconciliation:
    """Our movements of `start` to `end` (each location's own dates) looked up one by one, plus,
    where `gateways.listing` exists, the gateway's transactions of those dates our books lack."""
    checked_period(start, end)
    return await _reconcile(engine, gateways, start, end, lambda _: (start, end), location_id, reach, progress, concurrency)


async def reconcile_ended_days(
    engine: Engine, gateways: GatewayDirectory, now: datetime, *, progress: Progress | None = None, concurrency: int = LOOKUP_CONCURRENCY
) -> PeriodReconciliation:
    """Every location's newest local day that has ended at `now` (the day before its local date),
    so a clinic west of the others is never reconciled before its day is over; `start` and `end`
    of the answer are the oldest and newest of those days."""
    with Session(engine) as session:
        days = {location.id: last_ended_day(location.timezone, now) for location in locations_in_reach(session, None, None)}
    fallback = now.astimezone(UTC).date() - timedelta(days=1)
    start, end = min(days.values(), default=fallback), max(days.values(), default=fallback)
    return await _reconcile(engine, gateways, start, end, lambda location: (days[location.id],) * 2, None, None, progress, concurrency)


def last_ended_day(timezone: str, now: datetime) -> date:
    """The local day before the local date at `now` in `timezone`: the newest day that has ended there."""
    return _local_date(now, timezone) - timedelta(days=1)


async def _reconcile(
    engine: Engine,
    gateways: GatewayDirectory,
    start: date,
    end: date,
    span: Span,
    location_id: str | None,
    reach: frozenset[str] | None,
    progress: Progress | None,
    concurrency: int,
) -> PeriodReconciliation:
    located, zones = await asyncio.to_thread(_gather, engine, span, location_id, reach)
    shared = await asyncio.to_thread(_shared_oids, engine, zones, location_id, reach)
    gate = asyncio.Semaphore(concurrency)
    done = 0
    if progress is not None:
        progress(0, len(located))

    async def check(movement: Movement, oid: str) -> Movement:
        nonlocal done
        async with gate:
            checked = await _looked_up(gateways, movement, oid)
        done += 1
        if progress is not None:
            progress(done, len(located))
        return checked

    checked = list(await asyncio.gather(*(check(movement, oid) for movement, oid in located)))
    rows = None if gateways.listing is None else await _listed_rows(gateways, zones, span)
    if rows is None:  # no list, or it did not answer: the lookups stand alone
        return PeriodReconciliation(start, end, location_id, checked, gateway_listed=False)
    strays = await asyncio.to_thread(_not_in_books, engine, [row for row in rows if row[1].gravity_oid not in shared])
    counted = _of_our_movements(rows, shared, {m.external_transaction_id for m in checked})
    return PeriodReconciliation(start, end, location_id, checked + strays, gateway_listed=True, double_charges=count_double_charges(counted))


def _shared_oids(engine: Engine, zones: dict[str, list[Location]], location_id: str | None, reach: frozenset[str] | None) -> set[str]:
    """The merchant OIDs of the answer that locations outside it use too: their gateway-only rows
    name no location, so a scoped answer cannot claim them (they may be another location's)."""
    if location_id is None and reach is None:
        return set()
    with Session(engine) as session:
        scope = {location.id for location in locations_in_reach(session, location_id, reach)}
        others = session.exec(select(Location.gravity_oid).where(col(Location.gravity_oid).in_(list(zones)), col(Location.id).notin_(scope)))
        return set(others)


def _of_our_movements(rows: list[Listed], shared: set[str], ours: set[str]) -> list[Mapping[str, Any]]:
    """The gateway rows double charges are counted over: all of an unshared OID's, and of a shared
    one only those whose reference one of our movements' rows carries (the asked location's sales)."""
    references = {str(row.get("reference")) for row, _, _ in rows if str(row["external_transaction_id"]) in ours and row.get("reference")}
    return [row for row, location, _ in rows if location.gravity_oid not in shared or str(row.get("reference")) in references]


async def _looked_up(gateways: GatewayDirectory, movement: Movement, oid: str) -> Movement:
    try:
        found = await gateways.for_oid(oid).lookup(movement.external_transaction_id)
    except (GravityError, LookupError):  # LookupError: no token for the OID
        return replace(movement, status="unreachable")
    if found is None:
        return replace(movement, status="matched" if movement.ours_cents == 0 else "unknown_at_gateway")
    theirs = found.approved_cents if found.approved else 0
    return replace(movement, gateway_cents=theirs, status="matched" if theirs == movement.ours_cents else "differs")


def _gather(engine: Engine, span: Span, location_id: str | None, reach: frozenset[str] | None) -> tuple[list[tuple[Movement, str]], dict[str, list[Location]]]:
    """Every settled card sale, and every finished void or refund, started or settled (a late
    answer) over each location's `span` in its zone (each once, dated when it was started), with the
    merchant's OID; and per OID one location of each distinct zone and span among its locations
    (the calendars its list is read on)."""
    out: list[tuple[Movement, str]] = []
    readings: dict[str, dict[tuple[str, date, date], Location]] = {}
    with Session(engine) as session:
        for location in locations_in_reach(session, location_id, reach):
            start, end = span(location)
            readings.setdefault(location.gravity_oid, {}).setdefault((location.timezone, start, end), location)
            since, until = local_day_bounds(start, location.timezone)[0], local_day_bounds(end, location.timezone)[1]
            payments = select(Payment).where(
                Payment.location_id == location.id,
                Payment.method != "credit",
                col(Payment.status).in_(RECONCILED_PAYMENTS),
                # taken in the span, or settled in it after a day reconciled while it was pending
                _in_span(col(Payment.created_at), col(Payment.settled_at), since, until),
            )
            for p in session.exec(payments.order_by(col(Payment.created_at), col(Payment.id))):
                movement = Movement(_local_date(p.created_at, location.timezone), p.external_transaction_id, "sale", location.id, p.approved_cents)
                out.append((movement, location.gravity_oid))
            refunds = (
                select(Refund)
                .join(Payment, col(Payment.id) == Refund.payment_id)
                .where(
                    Payment.location_id == location.id,
                    col(Refund.status).in_(SETTLED_REFUND_STATUSES),
                    _in_span(col(Refund.created_at), col(Refund.settled_at), since, until),
                )
            )
            for r in session.exec(refunds.order_by(col(Refund.created_at), col(Refund.id))):
                cents = r.amount_cents if r.status == RefundStatus.DONE else 0
                movement = Movement(_local_date(r.created_at, location.timezone), r.external_transaction_id, r.kind, location.id, cents)
                out.append((movement, location.gravity_oid))
    return out, {oid: list(by_calendar.values()) for oid, by_calendar in readings.items()}


def _in_span(created_at: Any, settled_at: Any, since: datetime, until: datetime) -> ColumnElement[bool]:
    """Started in [since, until), or settled in it: a movement still pending on its own day is
    checked on the day it became final, and a later write to it (a refund) never lists it again."""
    return or_(and_(created_at >= since, created_at < until), and_(settled_at >= since, settled_at < until))


Listed = tuple[Mapping[str, Any], Location, date]  # a gateway row, the location it is read for, its local date


async def _listed_rows(gateways: GatewayDirectory, zones: dict[str, list[Location]], span: Span) -> list[Listed] | None:
    """Each merchant's gateway rows stamped over the span of any of its locations' calendars (each
    row once, for the first that claims it), so clinics sharing an OID in other zones or on other
    ended days each see their own; None when the list does not answer (the lookups still stand)."""
    assert gateways.listing is not None
    rows: list[Listed] = []
    for oid, locations in zones.items():
        try:
            listed = await gateways.listing.transactions(oid)
        except GravityError:
            return None
        claimed: set[int] = set()
        for location in locations:
            start, end = span(location)
            for index, row in enumerate(listed):
                if index in claimed or not row.get("created_at"):
                    continue
                day = _local_date(datetime.fromisoformat(str(row["created_at"])), location.timezone)
                if start <= day <= end:
                    claimed.add(index)
                    rows.append((row, location, day))
    return rows


def _not_in_books(engine: Engine, rows: Iterable[Listed]) -> list[Movement]:
    """The gateway's approved sales, voids and refunds whose external id our books never wrote."""
    money = [(row, location, day) for row, location, day in rows if _kind(row) is not None and row["status"] in APPROVED]
    ids = {str(row["external_transaction_id"]) for row, _, _ in money}
    with Session(engine) as session:
        known = set(session.exec(select(Payment.external_transaction_id).where(col(Payment.external_transaction_id).in_(ids))))
        known |= set(session.exec(select(Refund.external_transaction_id).where(col(Refund.external_transaction_id).in_(ids))))
    strays = []
    for row, location, day in money:
        ext = str(row["external_transaction_id"])
        if ext not in known:
            strays.append(Movement(day, ext, str(_kind(row)), location.id, None, _gateway_cents(row), "not_in_books"))
    return strays


def _kind(row: Mapping[str, Any]) -> str | None:
    kinds = {SALE: "sale", GIVE_BACK[0]: "refund", GIVE_BACK[1]: "void"}
    return kinds.get(str(row["transaction_type"]))


def _gateway_cents(row: Mapping[str, Any]) -> int:
    """What the gateway moved: an approved sale's or void's approved amount, a refund's amount."""
    return int(row["amount_cents"] or 0) if row["transaction_type"] == GIVE_BACK[0] else int(row["approved_cents"] or 0)


def _local_date(moment: datetime, timezone: str) -> date:
    local = pendulum.instance(moment).in_timezone(timezone)
    return date(local.year, local.month, local.day)
