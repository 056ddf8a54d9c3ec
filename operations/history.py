"""The audit trail finance reads: what Temporal recorded and what our books hold, side by side.

Why two sources: the workflow history says *why* something happened (a cycle fell due, a dunning
retry, an operator's update with its arguments, a postback signal, a continue-as-new), the database
says what it did to the money (payments, refunds, deposits, ledger transactions, outbox events).
An auditor needs both, in one time-ordered list, and must be able to check one against the other:
every approved charge the workflow reports carries the `externalTransactionId` of the payment row
and ledger transaction that booked it.

The workflow side follows the whole continue-as-new chain of each workflow (a subscription starts a
new run after every billed cycle): the newest run is read first and the chain is walked back
through each run's `continued_execution_run_id`, which is exact even while the visibility store
(what `list_workflows` reads) lags behind. Payloads are decoded with the client's data converter
(the pydantic one every part of the engine shares), typed where the contract is known.

Subjects: a subscription (its workflow, invoices and everything on them), an invoice (its own rows,
the subscription events about it, its terminal payments and cancellation saga) or a client
(everything of theirs).
"""

from __future__ import annotations

import asyncio
import csv
import io
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import date, datetime, timedelta, timezone
from typing import Any

from pydantic_core import to_jsonable_python
from sqlalchemy import Engine, or_
from sqlmodel import Session, select
from temporalio.api.common.v1 import Payloads
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.converter import decode_typed_search_attributes
from temporalio.service import RPCError, RPCStatusCode

from activities.registry import activity_types, workflow_types
from foundation.contracts import (
    CancelRequest,
    ChargeAsked,
    ChargeOutcome,
    ChargeRequest,
    CommandResult,
    GatewayResult,
    InvoiceChanged,
    PlanChange,
)
from foundation.ids import subscription_workflow_id
from models.billing import CreditApplication, Deposit, Invoice, Payment, Refund
from models.clinic import Client as ClinicClient
from models.ledger import LedgerEntry, LedgerTransaction
from models.outbox import OutboxEvent
from models.subscriptions import Subscription
from stack.search_attributes import PAYMENT_STATUS, SUBSCRIPTION_STATUS
from workflows.invoice_cancellation import cancellation_workflow_id
from workflows.terminal_payment import terminal_workflow_id

SUBJECTS = ("subscription", "invoice", "client")
FETCH_CONCURRENCY = 8  # workflows whose histories are read at once
TEMPORAL = "temporal"
DATABASE = "database"

# What each payload is, so it decodes into the contract the workflow used (unknown ones stay JSON).
_WORKFLOWS = workflow_types()  # declared by each workflow's run method, in the registry the worker runs
_WORKFLOW_INPUTS = {name: input_type for name, (input_type, _) in _WORKFLOWS.items()}
_WORKFLOW_RESULTS = {name: result_type for name, (_, result_type) in _WORKFLOWS.items()}
_ACTIVITIES = activity_types()  # name on the wire -> (argument, result), as each @activity.defn method declares them
_UPDATES: dict[str, tuple[list[type], type]] = {
    "cancel": ([CancelRequest], CommandResult),
    "pause": ([], CommandResult),
    "resume": ([], CommandResult),
    "change_card": ([str], CommandResult),
    "change_plan": ([PlanChange], CommandResult),
    "pay_now": ([], CommandResult),
}
_SIGNALS: dict[str, list[type]] = {"invoice_changed": [InvoiceChanged], "postback": [GatewayResult], "charging_enabled": []}
# The markers the SDK core leaves in history: a local activity's, and a patch's (versioning).
LOCAL_ACTIVITY_MARKER = "core_local_activity"
PATCH_MARKER = "core_patch"
# Updates and signals after which the next charge attempt is theirs, not the dunning schedule's.
_CHARGE_TRIGGERS = ("change_card", "pay_now", "charging_enabled", "invoice_changed")


class UnknownSubject(LookupError):
    """No subscription, invoice or client with that id."""


@dataclass
class HistoryEntry:
    """One line of the audit trail; `source` says whose record it is (temporal or database)."""

    at: datetime
    source: str
    kind: str
    summary: str
    trigger: str = ""
    workflow_id: str | None = None
    run_id: str | None = None
    event_id: int | None = None
    invoice_id: str | None = None
    payment_id: str | None = None
    attempt: int | None = None
    amount_cents: int | None = None
    status: str | None = None
    reason: str | None = None
    external_transaction_id: str | None = None
    reference: str | None = None
    payload: Any = None

    def row(self) -> dict[str, Any]:
        """The flat CSV row (the payload is left to the JSON export)."""
        data = asdict(self)
        data.pop("payload")
        data["at"] = self.at.isoformat()
        return data


CSV_COLUMNS = tuple(f.name for f in fields(HistoryEntry) if f.name != "payload")


@dataclass
class WorkflowRuns:
    workflow_id: str
    workflow_type: str
    run_ids: list[str]  # oldest first
    status: str


@dataclass
class AuditTrail:
    subject: str
    subject_id: str
    entries: list[HistoryEntry]
    workflows: list[WorkflowRuns] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "id": self.subject_id,
            "workflows": [asdict(w) for w in self.workflows],
            "entries": [to_jsonable_python(asdict(e)) for e in self.entries],
        }

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for entry in self.entries:
            writer.writerow({k: "" if v is None else v for k, v in entry.row().items()})
        return out.getvalue()


# ============================================================================ entry point
async def audit_trail(client: Client, engine: Engine, subject: str, subject_id: str) -> AuditTrail:
    """Everything recorded about one subscription, invoice or client, oldest first."""
    if subject not in SUBJECTS:
        raise ValueError(f"subject must be one of {', '.join(SUBJECTS)}, not {subject!r}")
    scope = await asyncio.to_thread(_scope, engine, subject, subject_id)
    database_entries = await asyncio.to_thread(_database_entries, engine, scope)
    workflows: list[WorkflowRuns] = []
    temporal_entries: list[HistoryEntry] = []
    gate = asyncio.Semaphore(FETCH_CONCURRENCY)

    async def fetch(workflow_id: str) -> tuple[WorkflowRuns, list[HistoryEntry]] | None:
        async with gate:
            return await _workflow_entries(client, workflow_id)

    for found in await asyncio.gather(*(fetch(w) for w in scope.workflow_ids)):
        if found is None:
            continue
        runs, entries = found
        workflow_id = runs.workflow_id
        if subject == "invoice" and workflow_id.startswith("subscription:"):
            entries = [e for e in entries if e.invoice_id == subject_id]
        workflows.append(runs)
        temporal_entries.extend(entries)
    return AuditTrail(subject, subject_id, interleave(temporal_entries, database_entries), workflows)


# ============================================================================ one timeline from two clocks
_ISSUE_KINDS = ("invoice", "ledger:invoice_issued", "event:invoice.issued")
CLOCKS_AGREE = timedelta(minutes=5)


def interleave(temporal: list[HistoryEntry], database: list[HistoryEntry]) -> list[HistoryEntry]:
    """Both records in one list ordered by time.

    Why not simply sort on `at`: the two records keep their own clocks. In production they agree
    (the workflow clock is the wall clock) and this is a plain sort by time. With simulated time (the
    demo, time-skipping tests) the workflow clock runs months ahead of the rows' wall-clock stamps,
    and a plain sort would put all of one record before all of the other. So a book entry is anchored
    to the workflow event it records when both name the same thing (the gateway transaction id, the
    terminal payment, the invoice and attempt, the cycle an invoice was issued for) and, when the two
    clocks disagree by more than `CLOCKS_AGREE`, placed on the workflow's clock right after that
    event; an entry with no such match keeps its distance from the anchored entry before it.
    `at` itself is never changed: it is when that record was written, by its own clock.
    """
    decoded_order = {id(e): i for i, e in enumerate(temporal)}  # runs of one workflow in chain order
    temporal = sorted(temporal, key=lambda e: (e.at, e.workflow_id or "", decoded_order[id(e)]))
    database = sorted(database, key=lambda e: e.at)
    index = {id(e): i for i, e in enumerate(temporal)}
    times = [e.at for e in temporal]
    by_external: dict[str, HistoryEntry] = {}
    by_payment: dict[str, HistoryEntry] = {}
    by_attempt: dict[tuple[str, int], HistoryEntry] = {}
    by_cycle_invoice: dict[str, HistoryEntry] = {}
    for entry in temporal:
        if entry.external_transaction_id:
            by_external.setdefault(entry.external_transaction_id, entry)
        if entry.payment_id and entry.workflow_id == terminal_workflow_id(entry.payment_id):
            by_payment[entry.payment_id] = entry  # the terminal workflow's last word on its payment
        if entry.kind == "charge_result" and entry.invoice_id and entry.attempt:
            by_attempt.setdefault((entry.invoice_id, entry.attempt), entry)
        if entry.kind == "charge_requested" and entry.invoice_id:
            by_cycle_invoice.setdefault(entry.invoice_id, entry)

    def anchor_of(entry: HistoryEntry) -> HistoryEntry | None:
        if entry.external_transaction_id and entry.external_transaction_id in by_external:
            return by_external[entry.external_transaction_id]
        if entry.payment_id and entry.payment_id in by_payment:
            return by_payment[entry.payment_id]
        payload_attempt = entry.payload.get("attempt") if isinstance(entry.payload, dict) else None
        attempt = entry.attempt or _int_or_none(payload_attempt)
        if entry.invoice_id and attempt and (entry.invoice_id, attempt) in by_attempt:
            return by_attempt[(entry.invoice_id, attempt)]
        if entry.kind in _ISSUE_KINDS and entry.invoice_id:
            return by_cycle_invoice.get(entry.invoice_id)
        return None

    def own_time(entry: HistoryEntry, moment: datetime, position: int) -> tuple[datetime, int, int, int]:
        return (moment, bisect_right(times, moment) - 1, 1, position)

    keys: list[tuple[datetime, int, int, int]] = [(e.at, index[id(e)], 0, 0) for e in temporal]
    anchors = [anchor_of(e) for e in database]
    offset = next((a.at - e.at for e, a in zip(database, anchors) if a is not None), timedelta(0))
    for position, (entry, anchor) in enumerate(zip(database, anchors)):
        if anchor is not None:
            offset = anchor.at - entry.at
        if abs(offset) <= CLOCKS_AGREE:
            keys.append(own_time(entry, entry.at, position))
        elif anchor is not None:
            keys.append((anchor.at, index[id(anchor)], 1, position))
        else:
            keys.append(own_time(entry, entry.at + offset, position))
    everything = [*temporal, *database]
    return [everything[i] for i in sorted(range(len(everything)), key=lambda i: keys[i])]


# ============================================================================ what belongs to the subject
@dataclass
class _Scope:
    subject: str
    subject_id: str
    invoice_ids: list[str]
    payment_ids: list[str]
    client_ids: list[str]
    streams: list[str]
    workflow_ids: list[str]
    with_deposits: bool = False


def _scope(engine: Engine, subject: str, subject_id: str) -> _Scope:
    with Session(engine) as session:
        if subject == "subscription":
            sub = session.get(Subscription, subject_id)
            if sub is None:
                raise UnknownSubject(f"unknown subscription {subject_id}")
            invoice_ids = list(session.exec(select(Invoice.id).where(Invoice.subscription_id == sub.id)))
            payments = _payments(session, or_(Payment.subscription_id == sub.id, Payment.invoice_id.in_(invoice_ids)))  # type: ignore[union-attr]
            streams = [f"subscription:{sub.id}"]
            workflow_ids = [subscription_workflow_id(sub.id)]
            client_ids: list[str] = []
        elif subject == "invoice":
            invoice = session.get(Invoice, subject_id)
            if invoice is None:
                raise UnknownSubject(f"unknown invoice {subject_id}")
            invoice_ids = [invoice.id]
            payments = _payments(session, Payment.invoice_id == invoice.id)
            streams = []
            workflow_ids = [subscription_workflow_id(invoice.subscription_id)] if invoice.subscription_id else []
            client_ids = []
        else:
            person = session.get(ClinicClient, subject_id)
            if person is None:
                raise UnknownSubject(f"unknown client {subject_id}")
            invoice_ids = list(session.exec(select(Invoice.id).where(Invoice.client_id == person.id)))
            payments = _payments(session, Payment.client_id == person.id)
            subscription_ids = list(session.exec(select(Subscription.id).where(Subscription.client_id == person.id).order_by(Subscription.created_at)))
            streams = [f"client:{person.id}", *(f"subscription:{s}" for s in subscription_ids)]
            workflow_ids = [subscription_workflow_id(s) for s in subscription_ids]
            client_ids = [person.id]
        workflow_ids += [terminal_workflow_id(p.id) for p in payments if p.method == "terminal"]
        workflow_ids += [cancellation_workflow_id(i) for i in invoice_ids]
    return _Scope(
        subject, subject_id, invoice_ids, [p.id for p in payments], client_ids, streams,
        list(dict.fromkeys(workflow_ids)), with_deposits=subject == "client",
    )


def _payments(session: Session, condition: Any) -> list[Payment]:
    return list(session.exec(select(Payment).where(condition).order_by(Payment.created_at, Payment.attempt)))


# ============================================================================ the books
def _database_entries(engine: Engine, scope: _Scope) -> list[HistoryEntry]:
    entries: list[HistoryEntry] = []
    with Session(engine) as session:
        invoices = list(session.exec(select(Invoice).where(Invoice.id.in_(scope.invoice_ids)))) if scope.invoice_ids else []  # type: ignore[attr-defined]
        for invoice in invoices:
            period = f" for {invoice.period_start} to {invoice.period_end}" if invoice.period_start else ""
            entries.append(HistoryEntry(
                at=_utc(invoice.created_at), source=DATABASE, kind="invoice",
                summary=f"{invoice.kind} invoice {invoice.number} issued{period}; now {invoice.status}, paid {invoice.paid_cents} of {invoice.total_cents}",
                invoice_id=invoice.id, amount_cents=invoice.total_cents, status=invoice.status, reference=invoice.number,
            ))
        payments = list(session.exec(select(Payment).where(Payment.id.in_(scope.payment_ids)))) if scope.payment_ids else []  # type: ignore[attr-defined]
        for payment in payments:
            entries.append(_payment_entry(payment))
        refund_filter = []
        if scope.payment_ids:
            refund_filter.append(Refund.payment_id.in_(scope.payment_ids))  # type: ignore[attr-defined]
        if scope.invoice_ids:
            refund_filter.append(Refund.invoice_id.in_(scope.invoice_ids))  # type: ignore[union-attr]
        if refund_filter:
            for refund in session.exec(select(Refund).where(or_(*refund_filter))):
                entries.append(HistoryEntry(
                    at=_utc(refund.created_at), source=DATABASE, kind=refund.kind,
                    summary=f"{refund.kind} of {refund.amount_cents} cents on payment {refund.payment_id}: {refund.status}"
                    + (f" ({refund.reason})" if refund.reason else ""),
                    invoice_id=refund.invoice_id, payment_id=refund.payment_id, amount_cents=refund.amount_cents,
                    status=refund.status, reason=refund.reason or None, external_transaction_id=refund.external_transaction_id,
                    reference=refund.attempt_key,
                ))
        if scope.invoice_ids:
            for application in session.exec(select(CreditApplication).where(CreditApplication.invoice_id.in_(scope.invoice_ids))):  # type: ignore[attr-defined]
                entries.append(HistoryEntry(
                    at=_utc(application.created_at), source=DATABASE, kind="credit_applied",
                    summary=f"{application.amount_cents} cents of deposit {application.deposit_id} applied",
                    invoice_id=application.invoice_id, amount_cents=application.amount_cents, reference=application.deposit_id,
                ))
        if scope.with_deposits:
            for deposit in session.exec(select(Deposit).where(Deposit.client_id.in_(scope.client_ids))):  # type: ignore[attr-defined]
                entries.append(HistoryEntry(
                    at=_utc(deposit.created_at), source=DATABASE, kind="deposit",
                    summary=f"deposit {deposit.id} of {deposit.amount_cents} cents; {deposit.remaining_cents} left ({deposit.status})",
                    payment_id=deposit.payment_id, amount_cents=deposit.amount_cents, status=deposit.status, reference=deposit.id,
                ))
        entries.extend(_ledger_entries(session, scope))
        entries.extend(_outbox_entries(session, scope))
    return entries


def _payment_entry(payment: Payment) -> HistoryEntry:
    money = payment.approved_cents if payment.status in ("approved", "voided", "refunded") else payment.amount_cents
    what = f"{payment.method.replace('_', ' ')} {payment.purpose} payment, attempt {payment.attempt}: {payment.status} {money} cents"
    if payment.decline_reason:
        what += f" ({payment.decline_reason}, {payment.decline_class or 'unclassified'})"
    if payment.refunded_cents:
        what += f"; {payment.refunded_cents} cents given back"
    return HistoryEntry(
        at=_utc(payment.created_at), source=DATABASE, kind="payment", summary=what, invoice_id=payment.invoice_id,
        payment_id=payment.id, attempt=payment.attempt, amount_cents=money, status=payment.status, reason=payment.decline_reason,
        external_transaction_id=payment.external_transaction_id, reference=payment.attempt_key,
    )


def _ledger_entries(session: Session, scope: _Scope) -> list[HistoryEntry]:
    conditions = []
    if scope.invoice_ids:
        conditions.append(LedgerTransaction.invoice_id.in_(scope.invoice_ids))  # type: ignore[union-attr]
    if scope.payment_ids:
        conditions.append(LedgerTransaction.payment_id.in_(scope.payment_ids))  # type: ignore[union-attr]
    if scope.client_ids:
        conditions.append(LedgerTransaction.client_id.in_(scope.client_ids))  # type: ignore[union-attr]
    if not conditions:
        return []
    transactions = list(session.exec(select(LedgerTransaction).where(or_(*conditions))))
    if not transactions:
        return []
    ids = [t.id for t in transactions]
    lines: dict[int, list[LedgerEntry]] = {}
    for line in session.exec(select(LedgerEntry).where(LedgerEntry.transaction_id.in_(ids)).order_by(LedgerEntry.id)):  # type: ignore[attr-defined]
        lines.setdefault(line.transaction_id, []).append(line)
    out = []
    for txn in transactions:
        legs = lines.get(txn.id or 0, [])
        debits = " + ".join(f"{leg.account} {leg.amount_cents}" for leg in legs if leg.amount_cents > 0)
        credits = " + ".join(f"{leg.account} {-leg.amount_cents}" for leg in legs if leg.amount_cents < 0)
        out.append(HistoryEntry(
            at=_utc(txn.created_at), source=DATABASE, kind=f"ledger:{txn.kind}",
            summary=f"DR {debits} / CR {credits}" + (f" ({txn.memo})" if txn.memo else ""),
            invoice_id=txn.invoice_id, payment_id=txn.payment_id, amount_cents=sum(leg.amount_cents for leg in legs if leg.amount_cents > 0),
            reference=txn.reference, external_transaction_id=_external_id_of(txn.reference),
            payload={"transaction_id": txn.id, "entries": {leg.account: leg.amount_cents for leg in legs}},
        ))
    return out


def _external_id_of(reference: str) -> str | None:
    """`payment:<ext>:approved` and `refund:<ext>:done` name the gateway transaction."""
    parts = reference.split(":")
    return parts[1] if len(parts) == 3 and parts[0] in ("payment", "refund") else None


def _outbox_entries(session: Session, scope: _Scope) -> list[HistoryEntry]:
    conditions = []
    if scope.streams:
        conditions.append(OutboxEvent.stream.in_(scope.streams))  # type: ignore[attr-defined]
    if scope.invoice_ids:
        conditions.append(OutboxEvent.payload["invoice_id"].astext.in_(scope.invoice_ids))  # type: ignore[index]
    if scope.payment_ids:
        conditions.append(OutboxEvent.payload["payment_id"].astext.in_(scope.payment_ids))  # type: ignore[index]
    if not conditions:
        return []
    out = []
    for event in session.exec(select(OutboxEvent).where(or_(*conditions)).order_by(OutboxEvent.id)):
        payload = event.payload or {}
        detail = payload.get("detail") or payload.get("reason") or ""
        out.append(HistoryEntry(
            at=_utc(event.created_at), source=DATABASE, kind=f"event:{event.type}",
            summary=f"{event.type} (#{event.seq} on {event.stream})" + (f": {detail}" if detail else ""),
            invoice_id=payload.get("invoice_id"), payment_id=payload.get("payment_id"), status=payload.get("status"),
            amount_cents=_int_or_none(payload.get("amount_cents")), reason=payload.get("decline_reason") or payload.get("reason"),
            reference=event.event_id, payload=payload,
        ))
    return out


# ============================================================================ Temporal's history
async def _workflow_entries(client: Client, workflow_id: str) -> tuple[WorkflowRuns, list[HistoryEntry]] | None:
    """Every run of `workflow_id` (None if it never existed), decoded into entries."""
    try:
        description = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    histories: list[tuple[str, list[HistoryEvent]]] = []
    run_id: str | None = description.run_id
    while run_id:
        events = [event async for event in client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history_events()]
        if not events:
            break
        histories.append((run_id, events))
        run_id = events[0].workflow_execution_started_event_attributes.continued_execution_run_id or None
    histories.reverse()
    if not histories:
        return None
    run_ids = [run for run, _ in histories]
    workflow_type = histories[0][1][0].workflow_execution_started_event_attributes.workflow_type.name
    decoder = _RunDecoder(client, workflow_id, workflow_type)
    entries: list[HistoryEntry] = []
    for run, (_, events) in zip(run_ids, histories):
        entries.extend(await decoder.decode_run(run, events))
    status = description.status.name.lower() if description.status else "unknown"
    return WorkflowRuns(workflow_id, workflow_type, run_ids, status), entries


class _RunDecoder:
    """Turns one run's events into entries; keeps per-run maps (scheduled activity, accepted update)."""

    def __init__(self, client: Client, workflow_id: str, workflow_type: str) -> None:
        self._converter = client.data_converter
        self._workflow_id = workflow_id
        self._type = workflow_type
        self._pending_trigger: str | None = None

    async def decode_run(self, run_id: str, events: Sequence[HistoryEvent]) -> list[HistoryEntry]:
        self._run_id = run_id
        self._scheduled: dict[int, tuple[str, Any, HistoryEntry]] = {}
        self._started_attempts: dict[int, int] = {}
        self._updates: dict[int, str] = {}
        entries: list[HistoryEntry] = []
        for event in events:
            if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
                entries.extend(await self._local_activity(event))
                continue
            entry = await self._decode(event)
            if entry is not None:
                entries.append(entry)
        return entries

    def _entry(self, event: HistoryEvent, kind: str, summary: str, **values: Any) -> HistoryEntry:
        return HistoryEntry(
            at=event.event_time.ToDatetime(tzinfo=timezone.utc), source=TEMPORAL, kind=kind, summary=summary,
            workflow_id=self._workflow_id, run_id=self._run_id, event_id=event.event_id, **values,
        )

    async def _values(self, payloads: Payloads, hints: Sequence[type | None] | None) -> list[Any]:
        if not payloads.payloads:
            return []
        if hints is not None and len(hints) == len(payloads.payloads) and all(h is not None for h in hints):
            try:
                return await self._converter.decode(payloads.payloads, list(hints))  # type: ignore[arg-type]
            except Exception:  # noqa: BLE001 - an older contract shape: fall back to plain JSON
                pass
        return await self._converter.decode(payloads.payloads)

    async def _decode(self, event: HistoryEvent) -> HistoryEntry | None:  # noqa: C901, PLR0911, PLR0912 - one branch per event type
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            attrs = event.workflow_execution_started_event_attributes
            values = await self._values(attrs.input, [_WORKFLOW_INPUTS.get(self._type)])
            if attrs.continued_execution_run_id:
                return self._entry(event, "run_continued", f"{self._type} run continues the previous one (continue-as-new)",
                                   trigger="continue-as-new", payload=_json(values))
            return self._entry(event, "workflow_started", f"{self._type} workflow started", trigger=_who(attrs.identity),
                               payload=_json(values))
        if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            name = attrs.activity_type.name
            hint = _ACTIVITIES.get(name, (None, None))[0]
            values = await self._values(attrs.input, [hint])
            request = values[0] if values else None
            entry = self._scheduled_entry(event, name, request)
            self._scheduled[event.event_id] = (name, request, entry)
            return entry
        if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attrs = event.activity_task_started_event_attributes
            self._started_attempts[attrs.scheduled_event_id] = attrs.attempt
            return None
        if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            attrs = event.activity_task_completed_event_attributes
            name, request, scheduled = self._scheduled.get(attrs.scheduled_event_id, ("?", None, None))
            values = await self._values(attrs.result, [_ACTIVITIES.get(name, (None, None))[1]])
            tries = self._started_attempts.get(attrs.scheduled_event_id, 1)
            return self._completed_entry(event, name, request, values[0] if values else None, scheduled, tries)
        if kind in (EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED, EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT):
            failed = kind == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
            attrs = event.activity_task_failed_event_attributes if failed else event.activity_task_timed_out_event_attributes
            name, _, scheduled = self._scheduled.get(attrs.scheduled_event_id, ("?", None, None))
            return self._entry(event, "activity_failed", f"activity {name} {'failed' if failed else 'timed out'}: {attrs.failure.message}",
                               status="failed", reason=attrs.failure.message, invoice_id=scheduled.invoice_id if scheduled else None)
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            attrs = event.workflow_execution_update_accepted_event_attributes
            name = attrs.accepted_request.input.name
            self._updates[event.event_id] = name
            hints, _ = _UPDATES.get(name, (None, None))
            args = await self._values(attrs.accepted_request.input.args, hints)
            who = _who(attrs.accepted_request.meta.identity)
            if name in _CHARGE_TRIGGERS:
                self._pending_trigger = f"update {name} by {who}"
            shown = ", ".join(_short(a) for a in args)
            return self._entry(event, "update", f"update {name}({shown}) accepted", trigger=who, status="accepted",
                               payload={"update": name, "args": _json(args)})
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
            attrs = event.workflow_execution_update_completed_event_attributes
            name = self._updates.get(attrs.accepted_event_id, "?")
            if attrs.outcome.HasField("failure"):
                return self._entry(event, "update_result", f"update {name} failed: {attrs.outcome.failure.message}",
                                   status="failed", reason=attrs.outcome.failure.message)
            values = await self._values(attrs.outcome.success, [_UPDATES.get(name, (None, CommandResult))[1]])
            result = values[0] if values else None
            message = getattr(result, "message", "") if result is not None else ""
            status = getattr(result, "status", None)
            return self._entry(event, "update_result", f"update {name} done: {message}".rstrip(": "), status=status, payload=_json(result))
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            attrs = event.workflow_execution_signaled_event_attributes
            args = await self._values(attrs.input, _SIGNALS.get(attrs.signal_name))
            if attrs.signal_name in _CHARGE_TRIGGERS:
                self._pending_trigger = f"signal {attrs.signal_name} from {_who(attrs.identity)}"
            first = args[0] if args else None
            return self._entry(event, "signal", f"signal {attrs.signal_name}({', '.join(_short(a) for a in args)})",
                               trigger=_who(attrs.identity), invoice_id=getattr(first, "invoice_id", None),
                               status=getattr(first, "status", None) or getattr(first, "outcome", None),
                               external_transaction_id=getattr(first, "external_transaction_id", None), payload=_json(args))
        if kind == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            attrs = event.upsert_workflow_search_attributes_event_attributes
            typed = decode_typed_search_attributes(attrs.search_attributes)
            status = typed.get(SUBSCRIPTION_STATUS) or typed.get(PAYMENT_STATUS)
            if status is None:
                return None
            return self._entry(event, "status", f"status is now {status}", status=status,
                               payload={pair.key.name: to_jsonable_python(pair.value) for pair in typed})
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            attrs = event.workflow_execution_continued_as_new_event_attributes
            return self._entry(event, "continued_as_new", f"run closed, continued as new run {attrs.new_execution_run_id}",
                               trigger="cycle boundary", reference=attrs.new_execution_run_id)
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            attrs = event.workflow_execution_completed_event_attributes
            values = await self._values(attrs.result, [_WORKFLOW_RESULTS.get(self._type)])
            result = values[0] if values else None
            status = result if isinstance(result, str) else getattr(result, "status", None)
            return self._entry(event, "workflow_completed", f"{self._type} workflow completed: {_short(result)}", status=status,
                               invoice_id=getattr(result, "invoice_id", None), payment_id=getattr(result, "payment_id", None),
                               payload=_json(result))
        if kind in (
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
        ):
            word = EventType.Name(kind).removeprefix("EVENT_TYPE_WORKFLOW_EXECUTION_").lower()
            return self._entry(event, f"workflow_{word}", f"{self._type} workflow {word}", status=word)
        return None

    async def _local_activity(self, event: HistoryEvent) -> list[HistoryEntry]:
        """A local activity's marker: which activity, how many tries, and its result or failure, but
        not its input. The subscription charge echoes what it was asked in its outcome, so it reads
        as a request and a result like an activity task's. A local activity that returns nothing
        (the status mirror) is left out: its upserted status and outbox event already show."""
        attrs = event.marker_recorded_event_attributes
        if attrs.marker_name != LOCAL_ACTIVITY_MARKER or "data" not in attrs.details:
            return []
        data = (await self._values(attrs.details["data"], None) or [{}])[0]
        name = data.get("activity_type", "?") if isinstance(data, dict) else "?"
        result_type = _ACTIVITIES.get(name, (None, None))[1]
        if result_type in (None, type(None)):  # unknown, or returns nothing (the status mirror)
            return []
        tries = int(data.get("attempt") or 1)
        if attrs.HasField("failure"):  # the charge's one local try; what follows is an activity task
            return [self._entry(event, "activity_failed", f"local activity {name} failed: {attrs.failure.message}",
                                status="failed", reason=attrs.failure.message)]
        values = await self._values(attrs.details["result"], [result_type]) if "result" in attrs.details else []
        result = values[0] if values else None
        asked = getattr(result, "asked", None)
        requested = self._scheduled_entry(event, name, asked) if isinstance(asked, ChargeAsked) else None
        completed = self._completed_entry(event, name, asked, result, requested, tries)
        return [requested, completed] if requested is not None else [completed]

    def _scheduled_entry(self, event: HistoryEvent, name: str, request: Any) -> HistoryEntry:
        if isinstance(request, (ChargeRequest, ChargeAsked)):
            trigger = "cycle due" if request.attempt <= 1 else "dunning retry"
            if request.attempt > 1 and self._pending_trigger:
                trigger = self._pending_trigger
            self._pending_trigger = None
            return self._entry(
                event, "charge_requested",
                f"charge cycle {request.cycle_index} ({request.period_start} to {request.period_end}), attempt {request.attempt}, card {request.card_id}",
                trigger=trigger, attempt=request.attempt, amount_cents=None, payload=_json(request),
            )
        return self._entry(event, "activity", f"activity {name}({_short(request)})", payload=_json(request),
                           invoice_id=getattr(request, "invoice_id", None), payment_id=getattr(request, "payment_id", None))

    def _completed_entry(
        self, event: HistoryEvent, name: str, request: Any, result: Any, scheduled: HistoryEntry | None, tries: int,
    ) -> HistoryEntry:
        retried = f" after {tries} tries (transient faults retried with the same attempt id)" if tries > 1 else ""
        if isinstance(result, ChargeOutcome):
            if scheduled is not None:
                scheduled.invoice_id = result.invoice_id
            attempt = request.attempt if isinstance(request, (ChargeRequest, ChargeAsked)) else None
            if result.outcome == "paid" and result.charged_cents:
                what = f"approved {result.charged_cents} cents"
            elif result.outcome == "paid":
                what = "paid without a charge (client credit or already paid)"
            elif result.outcome == "declined":
                what = f"declined: {result.decline_reason} ({result.decline_class})"
            elif result.outcome == "not_charged":
                what = f"not charged: {result.not_charged_reason}"
            else:
                what = f"{result.outcome}: {result.charged_cents} cents, {result.balance_cents} cents still open"
            return self._entry(
                event, "charge_result", f"charge attempt {attempt}: {what}{retried}", attempt=attempt, invoice_id=result.invoice_id,
                amount_cents=result.charged_cents, status=result.outcome, reason=result.decline_reason or result.not_charged_reason,
                external_transaction_id=result.external_transaction_id, payload=_json(result),
            )
        return self._entry(
            event, "activity_result", f"activity {name} done: {_short(result)}{retried}", payload=_json(result),
            invoice_id=getattr(result, "invoice_id", None) or (scheduled.invoice_id if scheduled else None),
            payment_id=getattr(result, "payment_id", None), status=getattr(result, "status", None),
            amount_cents=getattr(result, "approved_cents", None) or getattr(result, "amount_cents", None),
        )


# ============================================================================ small helpers
def _utc(moment: datetime | None) -> datetime:
    if moment is None:
        return datetime.min.replace(tzinfo=timezone.utc)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _who(identity: str) -> str:
    return identity or "unknown client"


def _json(value: Any) -> Any:
    return to_jsonable_python(value, fallback=str)


def _short(value: Any, limit: int = 80) -> str:
    if value is None:
        return ""
    if isinstance(value, (str, int, date)):
        text = str(value)
    else:
        data = _json(value)
        text = ", ".join(f"{k}={v}" for k, v in data.items() if v not in (None, "", [], {})) if isinstance(data, dict) else str(data)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def approved_charges(entries: Iterable[HistoryEntry]) -> list[HistoryEntry]:
    """The workflow's approved charge results (what an auditor checks against payments and ledger)."""
    return [e for e in entries if e.source == TEMPORAL and e.kind == "charge_result" and (e.amount_cents or 0) > 0]
