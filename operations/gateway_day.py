"""One day's reconciliation of our books against the gateway's transaction list, for a location or all.

Why by external transaction id and not by timestamp alone: a sale booked at 23:59:59 may carry the
gateway's next-day stamp. So the day picks the transactions to compare (ours booked that day, and
the gateway's stamped that day, each on the location's calendar), and `reconcile` then compares
those transactions whole, both ways, whatever day the other side put them on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pendulum
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from models.billing import Payment, Refund
from models.clinic import Location
from operations.reconciliation import Reconciliation, reconcile


class DayRefused(ValueError):
    """The location asked for is not one the caller can see."""


@dataclass(frozen=True)
class DayReconciliation:
    day: date
    location_ids: list[str]
    result: Reconciliation

    @property
    def matched(self) -> int:
        return self.result.compared - len(self.result.mismatches)


def reconcile_day(
    engine: Engine, gateway_rows: list[Mapping[str, Any]], day: date, *, location_id: str | None = None, reach: frozenset[str] | None = None
) -> DayReconciliation:
    """Our payments, refunds and voids of `day` against the gateway's rows of `day`, both ways."""
    with Session(engine) as session:
        query = select(Location).order_by(col(Location.id))
        if location_id is not None:
            query = query.where(Location.id == location_id)
        if reach is not None:
            query = query.where(col(Location.id).in_(reach))
        locations = {loc.id: loc for loc in session.exec(query)}
        if location_id is not None and not locations:
            raise DayRefused(f"--location: unknown location {location_id}")
        booked = _our_external_ids(session)
    zone_of_oid: dict[str, str] = {}
    for loc in locations.values():
        zone_of_oid.setdefault(loc.gravity_oid, loc.timezone)
    wanted = {ext for ext, (loc, at) in booked.items() if loc in locations and _local_day(at, locations[loc].timezone) == day}
    for row in gateway_rows:
        ext = str(row["external_transaction_id"])
        ours = booked.get(ext)
        if ours is not None:
            zone = locations[ours[0]].timezone if ours[0] in locations else None
        else:
            zone = zone_of_oid.get(str(row.get("oid")))
        if zone is not None and row.get("created_at") and _local_day(datetime.fromisoformat(str(row["created_at"])), zone) == day:
            wanted.add(ext)
    return DayReconciliation(day, list(locations), reconcile(engine, list(gateway_rows), only=wanted))


def _our_external_ids(session: Session) -> dict[str, tuple[str, datetime]]:
    """Every card payment's and refund's external id: (its location, when we booked it)."""
    found: dict[str, tuple[str, datetime]] = {}
    for ext, loc, at in session.exec(select(Payment.external_transaction_id, Payment.location_id, Payment.created_at).where(Payment.method != "credit")):
        found[ext] = (loc, at)
    refunds = select(Refund.external_transaction_id, Payment.location_id, Refund.created_at).join(Payment, col(Payment.id) == Refund.payment_id)
    for ext, loc, at in session.exec(refunds):
        found[ext] = (loc, at)
    return found


def _local_day(moment: datetime, tz: str) -> date:
    return pendulum.instance(moment).in_timezone(tz).date()
