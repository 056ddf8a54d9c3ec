"""The lists and searches the billing system and finance page through: subscriptions, plans, clients,
invoices, payments, refunds and deposits, each filtered and in one stable order (see `pages`).

Why here and not in the routes: the filters' rules (which statuses exist, what "in dunning" means,
how a day is read) are stated once, for the API, the CLI and any later console alike. Each query
takes `reach`, the locations the caller may see (None: every location). Days are calendar days in
each row's location time zone, the way the clinic reads them.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Generic, TypeVar

import pendulum
from sqlalchemy import Engine, and_, exists, false, func, literal, or_
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, select

from foundation.ids import subscription_stream
from foundation.statuses import DepositStatus, InvoiceStatus, PaymentStatus, RefundStatus, SubscriptionStatus
from models.billing import Deposit, Invoice, Payment, Refund
from models.clinic import Client, Location
from models.outbox import OutboxEvent
from models.plans import HealthPlan
from models.subscriptions import Subscription
from operations.pages import DEFAULT_LIMIT, FilterRefused, Page, SortKey, fetch_page, text_key, timestamp_key

Reach = frozenset[str] | None
Row = TypeVar("Row", Payment, Refund, Deposit)

SUBSCRIPTION_STATUSES = tuple(SubscriptionStatus)
INVOICE_STATUSES = tuple(InvoiceStatus)
PAYMENT_STATUSES = tuple(PaymentStatus)
REFUND_STATUSES = tuple(RefundStatus)
DEPOSIT_STATUSES = tuple(DepositStatus)
#: `payment.method`: how the money was taken (the `kind` filter of the payments list).
PAYMENT_KINDS = ("card_on_file", "terminal", "credit")
#: `refund.kind`: a void before settlement or a refund after it.
REFUND_KINDS = ("void", "refund")
#: `deposit.source`: a prepayment, an approval's excess kept, or a downgrade's credit.
DEPOSIT_SOURCES = ("deposit", "overpayment", "proration")
MAX_SEARCH_LENGTH = 100
FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(2999, 12, 31)

#: The outbox event a subscription's workflow records when a charge fails in a way no retry mends
#: (`workflows/subscription.py`, `_attempt`), and the status decisions after which it is over.
INCIDENT_EVENT = "payment.incident"
INCIDENT_CLEARED_BY = ("subscription.recovered", "subscription.reactivated", "subscription.cancelled", "subscription.ended")

SUBSCRIPTIONS = timestamp_key("subscriptions", Subscription.created_at, Subscription.id)
PLANS = timestamp_key("plans", HealthPlan.created_at, HealthPlan.id)
CLIENTS = text_key("clients", Client.name, Client.id)
INVOICES = timestamp_key("invoices", Invoice.created_at, Invoice.id)
PAYMENTS = timestamp_key("payments", Payment.created_at, Payment.id)
REFUNDS = timestamp_key("refunds", Refund.created_at, Refund.id)
DEPOSITS = timestamp_key("deposits", Deposit.created_at, Deposit.id)


def _one_of(field: str, value: str | None, allowed: Collection[str]) -> str | None:
    if value is not None and value not in allowed:
        raise FilterRefused(field, f"must be one of {', '.join(allowed)}")
    return value


def _days(**days: date | None) -> None:
    """Days a list can bound its rows by: years the books can hold, each named by its parameter."""
    for name, day in days.items():
        if day is not None and not FIRST_DAY <= day <= LAST_DAY:
            raise FilterRefused(name, f"must be from {FIRST_DAY} to {LAST_DAY}")


def _window(start: date | None, end: date | None, start_field: str, end_field: str) -> None:
    _days(**{start_field: start, end_field: end})
    if start is not None and end is not None and end < start:
        raise FilterRefused(end_field, f"must not be before {start_field}")


def _in_reach(column: Any, reach: Reach) -> ColumnElement[bool] | None:
    return None if reach is None else column.in_(reach)


def _local_days(
    session: Session, column: Any, location_column: Any, start: date | None, stop: date | None, *, location_id: str | None, reach: Reach
) -> ColumnElement[bool] | None:
    """`column` from local midnight of `start` (inclusive) to local midnight of `stop` (exclusive),
    midnight in each row's location zone: one index range per time zone of the group."""
    if start is None and stop is None:
        return None
    query = select(Location.id, Location.timezone)
    if location_id is not None:
        query = query.where(Location.id == location_id)
    if reach is not None:
        query = query.where(Location.id.in_(reach))  # type: ignore[attr-defined]
    by_zone: dict[str, list[str]] = {}
    for loc_id, zone in session.exec(query):
        by_zone.setdefault(zone, []).append(loc_id)
    if not by_zone:
        return false()
    parts = []
    for zone, ids in sorted(by_zone.items()):
        bounds = [location_column.in_(ids)]
        if start is not None:
            bounds.append(column >= _midnight(start, zone))
        if stop is not None:
            bounds.append(column < _midnight(stop, zone))
        parts.append(and_(*bounds))
    # The widest range over every zone, so the sort index is walked from the window, not the newest row.
    outer = []
    if start is not None:
        outer.append(column >= min(_midnight(start, zone) for zone in by_zone))
    if stop is not None:
        outer.append(column < max(_midnight(stop, zone) for zone in by_zone))
    return and_(*outer, or_(*parts))


def _midnight(day: date, zone: str) -> datetime:
    return pendulum.datetime(day.year, day.month, day.day, tz=zone)


def _next_day(day: date | None) -> date | None:
    return None if day is None else pendulum.Date(day.year, day.month, day.day).add(days=1)


def _where(query: Any, *conditions: ColumnElement[bool] | None) -> Any:
    for condition in conditions:
        if condition is not None:
            query = query.where(condition)
    return query


def open_incident() -> ColumnElement[bool]:
    """A subscription whose last incident event has no recovery, reactivation or end after it on its stream."""
    incident, later = aliased(OutboxEvent), aliased(OutboxEvent)
    cleared = exists().where(later.stream == incident.stream, later.id > incident.id, later.type.in_(INCIDENT_CLEARED_BY))  # type: ignore[attr-defined,operator]
    open_streams = select(incident.stream).where(incident.type == INCIDENT_EVENT, ~cleared)
    return (literal(subscription_stream("")) + Subscription.id).in_(open_streams)


def list_subscriptions(
    engine: Engine,
    *,
    status: str | None = None,
    client_id: str | None = None,
    pet_id: str | None = None,
    location_id: str | None = None,
    plan_id: str | None = None,
    due_before: date | None = None,
    due_after: date | None = None,
    in_dunning: bool | None = None,
    suspended: bool | None = None,
    has_incident: bool | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
    reach: Reach = None,
) -> Page[Subscription]:
    """Subscriptions, newest first. In dunning: the row's status is past_due (a charge failed and the
    workflow retries or waits); suspended: its status is suspended; with an incident: see `open_incident`.
    `due_after` and `due_before` bound the next due date (that day included, and excluded)."""
    _one_of("status", status, SUBSCRIPTION_STATUSES)
    _days(due_before=due_before, due_after=due_after)
    if due_after is not None and due_before is not None and due_before <= due_after:
        raise FilterRefused("due_before", "must be after due_after")

    def flag(value: bool | None, condition: ColumnElement[bool]) -> ColumnElement[bool] | None:
        return None if value is None else (condition if value else ~condition)

    with Session(engine) as session:
        query = _where(
            select(Subscription),
            None if status is None else Subscription.status == status,
            None if client_id is None else Subscription.client_id == client_id,
            None if pet_id is None else Subscription.pet_id == pet_id,
            None if location_id is None else Subscription.location_id == location_id,
            None if plan_id is None else Subscription.plan_id == plan_id,
            _in_reach(Subscription.location_id, reach),
            _local_days(session, Subscription.next_due_at, Subscription.location_id, due_after, due_before, location_id=location_id, reach=reach),
            flag(in_dunning, Subscription.status == SubscriptionStatus.PAST_DUE),
            flag(suspended, Subscription.status == SubscriptionStatus.SUSPENDED),
            flag(has_incident, open_incident()),
        )
        return fetch_page(session, query, SUBSCRIPTIONS, cursor=cursor, limit=limit, key_of=lambda s: s.created_at)


def list_plans(
    engine: Engine, *, location_id: str | None = None, active: bool | None = None, cursor: str | None = None, limit: int = DEFAULT_LIMIT, reach: Reach = None
) -> Page[HealthPlan]:
    """Plans, newest first; a location's plans include the group-wide ones (no location), offered everywhere."""

    def offered(locations: Collection[str]) -> ColumnElement[bool]:
        return or_(HealthPlan.location_id.in_(locations), HealthPlan.location_id.is_(None))  # type: ignore[union-attr]

    with Session(engine) as session:
        query = _where(
            select(HealthPlan),
            None if location_id is None else offered([location_id]),
            None if reach is None else offered(reach),
            None if active is None else HealthPlan.active == active,
        )
        return fetch_page(session, query, PLANS, cursor=cursor, limit=limit, key_of=lambda p: p.created_at)


def _contains(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_clients(
    engine: Engine, *, location_id: str | None = None, q: str | None = None, cursor: str | None = None, limit: int = DEFAULT_LIMIT, reach: Reach = None
) -> Page[Client]:
    """Clients by name (the database's collation), then id; `q` finds a piece of the name or email, whatever the case."""
    if q is not None and not 1 <= len(q.strip()) <= MAX_SEARCH_LENGTH:
        raise FilterRefused("q", f"must hold 1 to {MAX_SEARCH_LENGTH} characters besides spaces")
    search = None
    if q is not None:
        pattern = _contains(q.strip())
        search = or_(func.lower(Client.name).like(pattern, escape="\\"), func.lower(Client.email).like(pattern, escape="\\"))
    with Session(engine) as session:
        query = _where(
            select(Client),
            None if location_id is None else Client.location_id == location_id,
            _in_reach(Client.location_id, reach),
            search,
        )
        return fetch_page(session, query, CLIENTS, cursor=cursor, limit=limit, key_of=lambda c: c.name)


def list_invoices(
    engine: Engine,
    *,
    location_id: str | None = None,
    client_id: str | None = None,
    status: str | None = None,
    issued_from: date | None = None,
    issued_to: date | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
    reach: Reach = None,
) -> Page[Invoice]:
    """Invoices, newest first; `issued_from` and `issued_to` are the first and last day of issue."""
    _one_of("status", status, INVOICE_STATUSES)
    _window(issued_from, issued_to, "issued_from", "issued_to")
    with Session(engine) as session:
        query = _where(
            select(Invoice),
            None if location_id is None else Invoice.location_id == location_id,
            None if client_id is None else Invoice.client_id == client_id,
            None if status is None else Invoice.status == status,
            _in_reach(Invoice.location_id, reach),
            _local_days(session, Invoice.created_at, Invoice.location_id, issued_from, _next_day(issued_to), location_id=location_id, reach=reach),
        )
        return fetch_page(session, query, INVOICES, cursor=cursor, limit=limit, key_of=lambda i: i.created_at)


@dataclass(frozen=True)
class MoneyList(Generic[Row]):
    """What sets one list of money rows apart: its table and order, its statuses, its kind filter
    (the parameter's name, its values and column), and the columns its location, client and days
    are read from (a refund's location and client are the refunded payment's, through `join`)."""

    model: type[Row]
    sort: SortKey
    statuses: tuple[str, ...]
    kind_param: str
    kinds: tuple[str, ...]
    kind_column: Any
    location_column: Any
    client_column: Any
    join: tuple[Any, Any] | None = None


PAYMENT_LIST = MoneyList(Payment, PAYMENTS, PAYMENT_STATUSES, "kind", PAYMENT_KINDS, Payment.method, Payment.location_id, Payment.client_id)
REFUND_LIST = MoneyList(
    Refund, REFUNDS, REFUND_STATUSES, "kind", REFUND_KINDS, Refund.kind, Payment.location_id, Payment.client_id, join=(Payment, Payment.id == Refund.payment_id)
)
DEPOSIT_LIST = MoneyList(Deposit, DEPOSITS, DEPOSIT_STATUSES, "source", DEPOSIT_SOURCES, Deposit.source, Deposit.location_id, Deposit.client_id)


def list_money(
    engine: Engine,
    money: MoneyList[Row],
    *,
    location_id: str | None = None,
    client_id: str | None = None,
    status: str | None = None,
    kind: str | None = None,
    start: date | None = None,
    end: date | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
    reach: Reach = None,
) -> Page[Row]:
    """Payments (declined attempts too), voids and refunds, or client credit (prepayments, kept
    excess, downgrade credit), newest first; `kind` filters by `money.kind_column` (the API's
    `kind` or `source`), `start` and `end` are the first and last day (the API's `from` and `to`)."""
    _one_of("status", status, money.statuses)
    _one_of(money.kind_param, kind, money.kinds)
    _window(start, end, "from", "to")
    model: Any = money.model
    query = select(model) if money.join is None else select(model).join(*money.join)
    with Session(engine) as session:
        query = _where(
            query,
            None if location_id is None else money.location_column == location_id,
            None if client_id is None else money.client_column == client_id,
            None if status is None else model.status == status,
            None if kind is None else money.kind_column == kind,
            _in_reach(money.location_column, reach),
            _local_days(session, model.created_at, money.location_column, start, _next_day(end), location_id=location_id, reach=reach),
        )
        return fetch_page(session, query, money.sort, cursor=cursor, limit=limit, key_of=lambda row: row.created_at)
