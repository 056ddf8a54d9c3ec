"""Finance over HTTP: the period report, the audit trail, reconciliation with the gateway, ledger
balances and the accounting journal, each as JSON or, with `format=csv`, as a CSV file.

Every figure comes from one function in `operations/` (the CLI's `billing report` and `billing
history` call the same ones); this module only parses the query and picks the answer's shape. The
routes pass the caller's reach (the locations its token reaches).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from api import examples as ex
from api.deps import Runtime, current_caller, runtime
from api.errors import ERRORS, ApiError, not_found, refusals, refused
from api.fields import ID_PATTERN, MAX_ID_LENGTH, PathId, QueryDay
from foundation.scopes import Caller
from operations.finance_scope import FIRST_YEAR, LAST_YEAR, MAX_PERIOD_DAYS, PERIOD_PATTERN, FinanceRefused, asked_period, month_of
from operations.history.scope import UnknownSubject
from operations.history.trail import audit_trail
from operations.journal import JOURNAL_FORMAT, journal
from operations.ledger_balances import ledger_balances
from operations.period_reconciliation import reconcile_period
from operations.reports import ReportRefused, finance_report

router = APIRouter(prefix="/finance", tags=["finance"], responses=ERRORS)

#: How long the audit trail waits for Temporal's workflow histories before answering with the books alone.
AUDIT_TEMPORAL_TIMEOUT_S = 10.0

Format = Literal["json", "csv"]
FORMAT_QUERY = Query(default="json", description="json, or csv for a file a spreadsheet or an accounting system imports")
PERIOD_QUERY = Query(pattern=PERIOD_PATTERN, description="A month, YYYY-MM (each location's own calendar)", examples=["2026-12"])
LOCATION_QUERY = Query(default=None, min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN, description="Only this location (default: every location)")
DAY_QUERY = Query(alias="date", description="A day, YYYY-MM-DD (each location's own day)", examples=["2026-12-01"])
#: The day parameter, its validator kept (a `= Query(...)` default would drop it).
DayParam = Annotated[QueryDay, DAY_QUERY]


#: What a well-formed query of the books may still be refused for.
QUERY_REFUSALS = refusals(
    refused=f"an unknown location_id, a date or period outside the years {FIRST_YEAR} to {LAST_YEAR}, "
    f"or a from..to period ending before it starts or longer than {MAX_PERIOD_DAYS} days"
)


def _csv(description: str, example: str, *, refusable: bool = True) -> dict[int | str, dict[str, Any]]:
    """The CSV beside the JSON answer (format=csv), with its header and first rows, and the business refusals of a query of the books."""
    csv_media = {"schema": {"type": "string"}, "example": example}
    csv_answer: dict[int | str, dict[str, Any]] = {200: {"description": description, "content": {"text/csv": csv_media}}}
    return {**csv_answer, **QUERY_REFUSALS} if refusable else csv_answer


def _answer(result: Any, fmt: Format, filename: str) -> Any:
    if fmt == "csv":
        return Response(result.to_csv(), media_type="text/csv; charset=utf-8", headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'})
    return result.to_json()


def _refusal(error: FinanceRefused) -> ApiError:
    return refused(error.field, error.reason)


# ----------------------------------------------------------------- the period report
class TallyOut(BaseModel):
    count: int
    cents: int


class FiguresOut(BaseModel):
    location_id: str
    name: str
    timezone: str
    billed: TallyOut
    voided: TallyOut
    collected: TallyOut
    collected_by_method: dict[str, TallyOut]
    credit_applied: TallyOut
    declined: TallyOut
    declined_by_reason: dict[str, TallyOut]
    recovered: TallyOut
    recovered_by_attempt: dict[str, TallyOut]
    refunded: TallyOut
    refunded_by_kind: dict[str, TallyOut]
    outstanding: TallyOut
    deposits_taken: TallyOut
    deposits_held: TallyOut
    deferred: TallyOut = Field(description="Billed to deferred revenue in the period (yearly plans)")
    recognized: TallyOut = Field(description="Deferred revenue recognized as revenue in the period")
    deferred_held: TallyOut = Field(description="Deferred revenue not yet earned at the end of the period")


class ReportOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True, json_schema_extra=ex.examples(ex.REPORT))
    from_: date = Field(alias="from")
    to: date
    generated_at: datetime
    currency: str
    amounts_in: str
    locations: list[FiguresOut]
    totals: FiguresOut


@router.get(
    "/report", response_model=ReportOut, responses=_csv("One row per figure: from, to, location_id, location, metric, key, count, cents", ex.REPORT_CSV)
)
def read_report(
    period: str = PERIOD_QUERY,
    location_id: str | None = LOCATION_QUERY,
    format: Format = FORMAT_QUERY,
    rt: Runtime = Depends(runtime),
    caller: Caller = Depends(current_caller),
) -> Any:
    """The month's figures per location (what `billing report` prints): billed, collected, declined,
    recovered, refunded, outstanding, deposits, and deferred revenue billed, recognized and held."""
    try:
        start, end = month_of(period)
        report = finance_report(rt.engine, start, end, location_id=location_id, reach=caller.reach)
    except FinanceRefused as error:
        raise _refusal(error) from None
    except ReportRefused as error:
        raise refused("location_id", str(error)) from None
    return _answer(report, format, f"report-{period}" + (f"-{location_id}" if location_id else ""))


# ----------------------------------------------------------------- the audit trail
class AuditOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=ex.examples(ex.AUDIT))
    subject: str
    id: str
    workflow_history_complete: bool = Field(description="false when Temporal did not answer in time: the books alone")
    workflows: list[dict[str, Any]]
    entries: list[dict[str, Any]]


async def _audit(rt: Runtime, caller: Caller, subject: str, subject_id: str, field: str, fmt: Format) -> Any:
    try:
        trail = await audit_trail(rt.temporal, rt.engine, subject, subject_id, reach=caller.reach, temporal_timeout_s=AUDIT_TEMPORAL_TIMEOUT_S)
    except UnknownSubject as error:
        raise not_found(field, str(error)) from None
    return _answer(trail, fmt, f"audit-{subject}-{subject_id}")


AUDIT_CSV = _csv("One row per entry of the trail, workflow history and books interleaved in time order", ex.AUDIT_CSV, refusable=False)


@router.get("/audit/subscriptions/{subscription_id}", response_model=AuditOut, responses=AUDIT_CSV)
async def read_subscription_audit(
    subscription_id: PathId, format: Format = FORMAT_QUERY, rt: Runtime = Depends(runtime), caller: Caller = Depends(current_caller)
) -> Any:
    """A subscription's books (invoices, attempts, refunds, ledger, events) beside its workflow history."""
    return await _audit(rt, caller, "subscription", subscription_id, "subscription_id", format)


@router.get("/audit/clients/{client_id}", response_model=AuditOut, responses=AUDIT_CSV)
async def read_client_audit(client_id: PathId, format: Format = FORMAT_QUERY, rt: Runtime = Depends(runtime), caller: Caller = Depends(current_caller)) -> Any:
    """Everything of one client's: their subscriptions' workflow histories beside all their books."""
    return await _audit(rt, caller, "client", client_id, "client_id", format)


# ----------------------------------------------------------------- reconciliation
class MovementOut(BaseModel):
    booked_on: date = Field(description="The location's local date: ours when we recorded it, else the gateway's stamp")
    external_transaction_id: str
    kind: str = Field(description="sale, void or refund")
    location_id: str
    ours_cents: int | None = Field(description="null: our books never recorded it")
    gateway_cents: int | None = Field(description="null: the gateway does not know it, or was not reached")
    status: str = Field(description="matched, differs, unknown_at_gateway, not_in_books or unreachable")


class KindTotalOut(BaseModel):
    kind: str
    ours_cents: int
    gateway_cents: int
    matched: bool


class ReconciliationOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True, json_schema_extra=ex.examples(ex.RECONCILIATION))

    from_: date = Field(alias="from")
    to: date
    day: date | None = Field(alias="date", description="the day, when the period is one day")
    location_id: str | None
    amounts_in: str
    gateway_listed: bool = Field(description="whether the gateway's own transaction list was read (the sandbox has one, emergepay none)")
    checked: int
    matched: int
    double_charges: int | None = Field(description="counted from the gateway's list; null without one")
    reconciled: bool
    totals: list[KindTotalOut]
    differences: list[MovementOut]
    movements: list[MovementOut]


FROM_QUERY = Query(alias="from", description="The period's first day, YYYY-MM-DD (with to; instead of date)", examples=["2026-12-01"])
TO_QUERY = Query(alias="to", description=f"The period's last day, YYYY-MM-DD: at most {MAX_PERIOD_DAYS} days after from", examples=["2026-12-31"])
ONE_DAY_QUERY = Query(alias="date", description="One day, YYYY-MM-DD (each location's own day): from and to in one", examples=["2026-12-01"])


@router.get(
    "/reconciliation",
    response_model=ReconciliationOut,
    responses=_csv("One row per movement: local date, external id, kind, location, ours, gateway's, status", ex.RECONCILIATION_CSV),
)
async def read_reconciliation(
    day: Annotated[QueryDay | None, ONE_DAY_QUERY] = None,
    start: Annotated[QueryDay | None, FROM_QUERY] = None,
    end: Annotated[QueryDay | None, TO_QUERY] = None,
    location_id: str | None = LOCATION_QUERY,
    format: Format = FORMAT_QUERY,
    rt: Runtime = Depends(runtime),
    caller: Caller = Depends(current_caller),
) -> Any:
    """Our books against the gateway for a day (`date`) or a period (`from`, `to`): every sale, void
    and refund recorded then, looked up at Gravity and compared to the cent, plus the gateway's own
    transactions our books lack where the gateway lists them; totals per kind."""
    try:
        first, last = asked_period(day, start, end)
        result = await reconcile_period(rt.engine, rt.gateways, first, last, location_id=location_id, reach=caller.reach)
    except FinanceRefused as error:
        raise _refusal(error) from None
    span = first.isoformat() if first == last else f"{first.isoformat()}-to-{last.isoformat()}"
    return _answer(result, format, f"reconciliation-{span}" + (f"-{location_id}" if location_id else ""))


# ----------------------------------------------------------------- ledger balances
class AccountBalanceOut(BaseModel):
    account: str
    opening_cents: int
    debits_cents: int
    credits_cents: int
    closing_cents: int


class BalancesOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True, json_schema_extra=ex.examples(ex.BALANCES))
    period: str
    from_: date = Field(alias="from")
    to: date
    location_id: str | None
    amounts_in: str
    accounts: list[AccountBalanceOut]


@router.get(
    "/ledger/balances",
    response_model=BalancesOut,
    responses=_csv("One row per account: period, location, account, opening, debits, credits, closing (cents)", ex.BALANCES_CSV),
)
def read_ledger_balances(
    period: str = PERIOD_QUERY,
    location_id: str | None = LOCATION_QUERY,
    format: Format = FORMAT_QUERY,
    rt: Runtime = Depends(runtime),
    caller: Caller = Depends(current_caller),
) -> Any:
    """Each ledger account's opening balance, debits, credits and closing balance for the month
    (debit-positive, as the ledger stores them; debits and credits as positive sums)."""
    try:
        result = ledger_balances(rt.engine, period, location_id=location_id, reach=caller.reach)
    except FinanceRefused as error:
        raise _refusal(error) from None
    return _answer(result, format, f"ledger-balances-{period}" + (f"-{location_id}" if location_id else ""))


# ----------------------------------------------------------------- the journal
class JournalLineOut(BaseModel):
    date: date
    transaction_id: int
    account: str
    debit_cents: int
    credit_cents: int
    memo: str
    reference: str
    kind: str
    location_id: str
    client_id: str | None
    invoice_id: str | None
    posted_at: datetime


class JournalOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=ex.examples(ex.JOURNAL))
    date: date
    location_id: str | None
    format: str
    amounts_in: str
    transactions: int
    debits_cents: int
    credits_cents: int
    lines: list[JournalLineOut]


@router.get("/journal", response_model=JournalOut, responses=_csv(f"The accounting export, {JOURNAL_FORMAT}", ex.JOURNAL_CSV))
def read_journal(
    day: DayParam,
    location_id: str | None = LOCATION_QUERY,
    format: Format = FORMAT_QUERY,
    rt: Runtime = Depends(runtime),
    caller: Caller = Depends(current_caller),
) -> Any:
    """One journal line per ledger entry of the day; the lines of one transaction share its
    number and balance (debits = credits)."""
    try:
        result = journal(rt.engine, day, location_id=location_id, reach=caller.reach)
    except FinanceRefused as error:
        raise _refusal(error) from None
    return _answer(result, format, f"journal-{day.isoformat()}" + (f"-{location_id}" if location_id else ""))
