"""The lists and searches, each a page `{"items": [...], "next_cursor": ...}` in a stable order, and a
subscription's timeline. The queries and their rules live in `operations.listing` and
`operations.timeline`; a route states its parameters' bounds and translates refusals."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from sqlmodel import Session

from api import examples as ex
from api.deps import Runtime, current_caller, runtime
from api.errors import ERRORS, not_found, refusals, refused
from api.fields import ID_PATTERN, MAX_ID_LENGTH, CleanText, PathId
from api.routes.clients import ClientOut
from api.routes.invoices import InvoiceSummary, PaymentOut
from api.routes.plans import PlanOut, plan_out, services_of
from api.routes.subscriptions import SubscriptionRow
from foundation.scopes import Caller
from models.plans import HealthPlan, PlanService
from operations import listing
from operations.pages import CURSOR_PATTERN, DEFAULT_LIMIT, MAX_CURSOR_LENGTH, MAX_LIMIT, FilterRefused, Page
from operations.timeline import UnknownSubscription, subscription_timeline

router = APIRouter(responses=ERRORS)

T = TypeVar("T")


def _choice(values: tuple[str, ...]) -> str:
    return "^(" + "|".join(values) + ")$"


QueryId = Annotated[str | None, Query(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN, description="An id: letters, digits, _ and -")]
Cursor = Annotated[
    str | None,
    Query(min_length=1, max_length=MAX_CURSOR_LENGTH, pattern=CURSOR_PATTERN, description="The next_cursor of the previous page; unset: the first page"),
]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page")]


ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _iso_day(value: Any) -> Any:
    """Lets only YYYY-MM-DD through to a date (pydantic would read "0" as a timestamp)."""
    if isinstance(value, str) and not ISO_DAY.fullmatch(value):
        raise ValueError("must be a day as YYYY-MM-DD")
    return value


def _day(description: str, alias: str | None = None) -> Any:
    """A day parameter: a calendar day in each row's location time zone (ISO 8601)."""
    return Query(alias=alias, description=f"{description} (a day in each row's location time zone, {listing.FIRST_DAY} to {listing.LAST_DAY})")


PAGE_REFUSALS = refusals(refused="a cursor that is not this list's next_cursor; a day out of range or a window that ends before it starts")


class SubscriptionItem(SubscriptionRow):
    model_config = ConfigDict(json_schema_extra=ex.examples(ex.SUBSCRIPTION_ITEM))
    created_at: datetime | None = Field(description="The list's sort key (newest first, then id)")


class SubscriptionPage(BaseModel):
    model_config = ConfigDict(json_schema_extra=ex.examples(ex.page(ex.SUBSCRIPTION_ITEM)))
    items: list[SubscriptionItem]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


class PlanPage(BaseModel):
    model_config = ConfigDict(json_schema_extra=ex.examples(ex.page(ex.PLAN)))
    items: list[PlanOut]
    next_cursor: str | None


class ClientPage(BaseModel):
    model_config = ConfigDict(json_schema_extra=ex.examples(ex.page(ex.CLIENT)))
    items: list[ClientOut]
    next_cursor: str | None


class InvoicePage(BaseModel):
    model_config = ConfigDict(json_schema_extra=ex.examples(ex.page(ex.INVOICE_SUMMARY)))
    items: list[InvoiceSummary]
    next_cursor: str | None


class PaymentItem(PaymentOut):
    model_config = ConfigDict(json_schema_extra=ex.examples(ex.PAYMENT_ITEM))
    invoice_id: str | None
    client_id: str
    location_id: str
    subscription_id: str | None


class PaymentPage(BaseModel):
    model_config = ConfigDict(json_schema_extra=ex.examples(ex.page(ex.PAYMENT_ITEM)))
    items: list[PaymentItem]
    next_cursor: str | None


class RefundItem(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra=ex.examples(ex.REFUND_ITEM))
    id: str
    payment_id: str
    invoice_id: str | None
    kind: str
    status: str
    amount_cents: int
    reason: str
    created_at: datetime | None


class RefundPage(BaseModel):
    model_config = ConfigDict(json_schema_extra=ex.examples(ex.page(ex.REFUND_ITEM)))
    items: list[RefundItem]
    next_cursor: str | None


class DepositItem(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra=ex.examples(ex.DEPOSIT_ITEM))
    id: str
    client_id: str
    location_id: str
    payment_id: str | None
    amount_cents: int
    remaining_cents: int
    status: str
    source: str
    created_at: datetime | None


class DepositPage(BaseModel):
    model_config = ConfigDict(json_schema_extra=ex.examples(ex.page(ex.DEPOSIT_ITEM)))
    items: list[DepositItem]
    next_cursor: str | None


class TimelineItemOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    at: datetime
    kind: str = Field(description="cycle, invoice, charge_attempt, payment, void, refund, credit_applied, status_change or event")
    summary: str
    workflow_id: str | None = Field(description="The Temporal workflow behind the step, where the ids derive it")
    run_id: str | None = Field(description="Always null: the database records no run ids (see run_ids_note)")
    invoice_id: str | None
    payment_id: str | None
    attempt: int | None
    amount_cents: int | None
    status: str | None
    reason: str | None = Field(description="A decline's reason, a refund's or a status change's")
    event_type: str | None
    reference: str | None
    period_start: date | None
    period_end: date | None
    due_at: datetime | None


class TimelineOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=ex.examples(ex.TIMELINE))
    subscription_id: str
    workflow_id: str
    run_ids_note: str
    items: list[TimelineItemOut]


def _page(call: Callable[[], Page[T]], shape: Callable[[T], Any]) -> dict[str, Any]:
    try:
        page = call()
    except FilterRefused as error:
        raise refused(error.field, error.reason) from None
    return {"items": [shape(row) for row in page.items], "next_cursor": page.next_cursor}


@router.get("/subscriptions", response_model=SubscriptionPage, tags=["subscriptions"], responses=PAGE_REFUSALS)
def list_subscriptions(
    status: Annotated[str | None, Query(pattern=_choice(listing.SUBSCRIPTION_STATUSES))] = None,
    client_id: QueryId = None,
    pet_id: QueryId = None,
    location_id: QueryId = None,
    plan_id: QueryId = None,
    due_before: Annotated[date | None, BeforeValidator(_iso_day), _day("Next due before this local day (the day excluded)")] = None,
    due_after: Annotated[date | None, BeforeValidator(_iso_day), _day("Next due on or after this local day")] = None,
    in_dunning: Annotated[bool | None, Query(description="past_due: a charge failed and dunning retries or waits")] = None,
    suspended: Annotated[bool | None, Query(description="suspended: dunning ran out or the card is gone")] = None,
    has_incident: Annotated[bool | None, Query(description="A charge failed in a way no retry mends, and the subscription has not recovered since")] = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
    rt: Runtime = Depends(runtime),
    caller: Caller = Depends(current_caller),
) -> dict[str, Any]:
    """Subscriptions, newest first."""
    return _page(
        lambda: listing.list_subscriptions(
            rt.engine,
            status=status,
            client_id=client_id,
            pet_id=pet_id,
            location_id=location_id,
            plan_id=plan_id,
            due_before=due_before,
            due_after=due_after,
            in_dunning=in_dunning,
            suspended=suspended,
            has_incident=has_incident,
            cursor=cursor,
            limit=limit,
            reach=caller.reach,
        ),
        SubscriptionItem.model_validate,
    )


@router.get("/plans", response_model=PlanPage, tags=["plans"], responses=PAGE_REFUSALS)
def list_plans(
    location_id: Annotated[
        str | None, Query(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN, description="Plans offered there (group-wide ones too)")
    ] = None,
    active: Annotated[bool | None, Query(description="Only plans open (true) or closed (false) to new enrollments")] = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
    rt: Runtime = Depends(runtime),
    caller: Caller = Depends(current_caller),
) -> dict[str, Any]:
    """Health plans, newest first, with their services (read for the whole page at once)."""
    with Session(rt.engine) as session:
        services: dict[str, list[PlanService]] = {}

        def page() -> Page[HealthPlan]:
            found = listing.list_plans(rt.engine, location_id=location_id, active=active, cursor=cursor, limit=limit, reach=caller.reach)
            services.update(services_of(session, [plan.id for plan in found.items]))
            return found

        return _page(page, lambda plan: plan_out(session, plan, services[plan.id]))


@router.get("/clients", response_model=ClientPage, tags=["clients"], responses=PAGE_REFUSALS)
def list_clients(
    location_id: QueryId = None,
    q: Annotated[CleanText | None, Query(min_length=1, max_length=listing.MAX_SEARCH_LENGTH, description="A piece of the name or email, any case")] = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
    rt: Runtime = Depends(runtime),
    caller: Caller = Depends(current_caller),
) -> dict[str, Any]:
    """Clients by name, then id; `q` searches."""
    return _page(
        lambda: listing.list_clients(rt.engine, location_id=location_id, q=q, cursor=cursor, limit=limit, reach=caller.reach),
        ClientOut.model_validate,
    )


@router.get("/invoices", response_model=InvoicePage, tags=["invoices"], responses=PAGE_REFUSALS)
def list_invoices(
    location_id: QueryId = None,
    client_id: QueryId = None,
    status: Annotated[str | None, Query(pattern=_choice(listing.INVOICE_STATUSES))] = None,
    issued_from: Annotated[date | None, BeforeValidator(_iso_day), _day("Issued on or after this local day")] = None,
    issued_to: Annotated[date | None, BeforeValidator(_iso_day), _day("Issued on or before this local day")] = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
    rt: Runtime = Depends(runtime),
    caller: Caller = Depends(current_caller),
) -> dict[str, Any]:
    """Invoices, newest first."""
    return _page(
        lambda: listing.list_invoices(
            rt.engine,
            location_id=location_id,
            client_id=client_id,
            status=status,
            issued_from=issued_from,
            issued_to=issued_to,
            cursor=cursor,
            limit=limit,
            reach=caller.reach,
        ),
        InvoiceSummary.model_validate,
    )


From = Annotated[date | None, BeforeValidator(_iso_day), _day("On or after this day", alias="from")]
To = Annotated[date | None, BeforeValidator(_iso_day), _day("On or before this day", alias="to")]


@dataclass(frozen=True)
class DaysAndPage:
    """The parameters every money list ends with: the days it covers and where the page starts."""

    start: date | None
    end: date | None
    cursor: str | None
    limit: int


def days_and_page(start: From = None, end: To = None, cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT) -> DaysAndPage:
    """The shared parameters as one dependency, so each money list's route states only its own filters."""
    return DaysAndPage(start, end, cursor, limit)


def _money_page(
    rt: Runtime, caller: Caller, money: listing.MoneyList[Any], shape: Callable[[Any], Any], window: DaysAndPage, **filters: str | None
) -> dict[str, Any]:
    """A page of one money list (`listing.list_money`), its rows in the list's answer shape."""
    return _page(lambda: listing.list_money(rt.engine, money, **filters, **asdict(window), reach=caller.reach), shape)


@router.get("/payments", response_model=PaymentPage, tags=["payments"], responses=PAGE_REFUSALS)
def list_payments(
    location_id: QueryId = None,
    client_id: QueryId = None,
    status: Annotated[str | None, Query(pattern=_choice(listing.PAYMENT_LIST.statuses))] = None,
    kind: Annotated[str | None, Query(pattern=_choice(listing.PAYMENT_LIST.kinds), description="How the money was taken")] = None,
    window: DaysAndPage = Depends(days_and_page),
    rt: Runtime = Depends(runtime),
    caller: Caller = Depends(current_caller),
) -> dict[str, Any]:
    """Payments, declined attempts too, newest first."""
    return _money_page(
        rt, caller, listing.PAYMENT_LIST, PaymentItem.model_validate, window, location_id=location_id, client_id=client_id, status=status, kind=kind
    )


@router.get("/refunds", response_model=RefundPage, tags=["payments"], responses=PAGE_REFUSALS)
def list_refunds(
    location_id: QueryId = None,
    client_id: QueryId = None,
    status: Annotated[str | None, Query(pattern=_choice(listing.REFUND_LIST.statuses))] = None,
    kind: Annotated[str | None, Query(pattern=_choice(listing.REFUND_LIST.kinds))] = None,
    window: DaysAndPage = Depends(days_and_page),
    rt: Runtime = Depends(runtime),
    caller: Caller = Depends(current_caller),
) -> dict[str, Any]:
    """Voids and refunds, newest first; location and client are the refunded payment's."""
    return _money_page(
        rt, caller, listing.REFUND_LIST, RefundItem.model_validate, window, location_id=location_id, client_id=client_id, status=status, kind=kind
    )


@router.get("/deposits", response_model=DepositPage, tags=["payments"], responses=PAGE_REFUSALS)
def list_deposits(
    location_id: QueryId = None,
    client_id: QueryId = None,
    status: Annotated[str | None, Query(pattern=_choice(listing.DEPOSIT_LIST.statuses))] = None,
    source: Annotated[str | None, Query(pattern=_choice(listing.DEPOSIT_LIST.kinds))] = None,
    window: DaysAndPage = Depends(days_and_page),
    rt: Runtime = Depends(runtime),
    caller: Caller = Depends(current_caller),
) -> dict[str, Any]:
    """Client credit, newest first."""
    return _money_page(
        rt, caller, listing.DEPOSIT_LIST, DepositItem.model_validate, window, location_id=location_id, client_id=client_id, status=status, kind=source
    )


@router.get("/subscriptions/{subscription_id}/timeline", response_model=TimelineOut, tags=["subscriptions"])
def read_timeline(subscription_id: PathId, rt: Runtime = Depends(runtime), caller: Caller = Depends(current_caller)) -> TimelineOut:
    """The subscription's cycles, attempts, invoices, payments, refunds, status changes and events, oldest first, from the database alone."""
    try:
        timeline = subscription_timeline(rt.engine, subscription_id, reach=caller.reach)
    except UnknownSubscription as error:
        raise not_found("subscription_id", str(error)) from None
    return TimelineOut(
        subscription_id=timeline.subscription_id,
        workflow_id=timeline.workflow_id,
        run_ids_note=timeline.run_ids_note,
        items=[TimelineItemOut.model_validate(item) for item in timeline.items],
    )
