"""A subscription's timeline: its cycles, charge attempts (with decline reasons), invoices, payments,
refunds, status changes and outbox events in one list, oldest first, from the database alone.

Why not the audit trail (`operations.history`): that reads every workflow history from Temporal,
which is right for an audit and too slow for a page. The timeline reads the trail's database side
(`history.scope`, `history.books`) and names the workflow behind each item, which the ids derive
(`foundation.ids`). The run id is not: the database records no run ids, so `run_id` is null and the
audit trail is where a run is found.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import Engine
from sqlmodel import Session, select

from foundation.ids import cancellation_workflow_id, refund_request_id, refund_workflow_id, subscription_workflow_id, terminal_workflow_id
from models.billing import Invoice, Payment
from models.subscriptions import Subscription
from operations.history.books import database_entries
from operations.history.entries import HistoryEntry
from operations.history.scope import find_scope
from operations.history.values import utc

RUN_IDS_UNKNOWN = "the database records no workflow run ids: GET the subscription's audit trail for the run behind each step"
#: The payload `mirror_status` writes with a status decision of the workflow.
STATUS_CHANGE_PAYLOAD = frozenset({"status", "detail"})
#: Business-key prefixes of give-backs that run in a refund workflow of their own (`operations.payments`).
REFUND_WORKFLOW_KEYS = ("customer:", "deposit-refund:")


class UnknownSubscription(LookupError):
    """No subscription with that id (or none the caller may see)."""


@dataclass(frozen=True)
class TimelineItem:
    """One step of a subscription's life; `workflow_id` is the workflow that took it, where known."""

    at: datetime
    kind: str
    summary: str
    workflow_id: str | None
    run_id: str | None = None
    invoice_id: str | None = None
    payment_id: str | None = None
    attempt: int | None = None
    amount_cents: int | None = None
    status: str | None = None
    reason: str | None = None
    event_type: str | None = None
    reference: str | None = None
    period_start: date | None = None
    period_end: date | None = None
    due_at: datetime | None = None


@dataclass(frozen=True)
class Timeline:
    subscription_id: str
    workflow_id: str
    items: list[TimelineItem] = field(default_factory=list)
    run_ids_note: str = RUN_IDS_UNKNOWN


def subscription_timeline(engine: Engine, subscription_id: str, *, reach: frozenset[str] | None = None) -> Timeline:
    """Everything the database knows about one subscription, oldest first (same-moment items in the
    order the books list them: invoice, then its attempts, then what they caused)."""
    with Session(engine) as session:
        sub = session.get(Subscription, subscription_id)
        if sub is None or (reach is not None and sub.location_id not in reach):
            raise UnknownSubscription(f"unknown subscription {subscription_id}")
    scope = find_scope(engine, "subscription", subscription_id)
    own = subscription_workflow_id(subscription_id)
    with Session(engine) as session:
        cycles = list(session.exec(select(Invoice).where(Invoice.subscription_id == subscription_id, Invoice.kind == "subscription")))
        query = select(Payment.id, Payment.method).where(Payment.id.in_(scope.payment_ids))  # type: ignore[attr-defined]
        methods = dict(session.exec(query).all()) if scope.payment_ids else {}
    payment_workflows = {pid: terminal_workflow_id(pid) if method == "terminal" else own for pid, method in methods.items()}
    items = [_cycle_item(invoice, own) for invoice in cycles]
    for entry in database_entries(engine, scope, with_ledger=False):
        items.append(_item(entry, own, methods, payment_workflows))
    order = {"cycle": 0, "invoice": 1}
    items.sort(key=lambda item: (item.at, order.get(item.kind, 2)))
    return Timeline(subscription_id, own, items)


def _cycle_item(invoice: Invoice, workflow_id: str) -> TimelineItem:
    return TimelineItem(
        at=utc(invoice.created_at),
        kind="cycle",
        summary=f"cycle {invoice.period_start} to {invoice.period_end} billed (invoice {invoice.number})",
        workflow_id=workflow_id,
        invoice_id=invoice.id,
        amount_cents=invoice.total_cents,
        period_start=invoice.period_start,
        period_end=invoice.period_end,
        due_at=invoice.due_at,
    )


def _item(entry: HistoryEntry, own: str, methods: dict[str, str], payment_workflows: dict[str, str]) -> TimelineItem:
    kind, workflow_id, event_type = entry.kind, None, None
    if kind == "invoice" or kind == "credit_applied":
        workflow_id = own
    elif kind == "payment":
        kind = "charge_attempt" if methods.get(entry.payment_id or "") == "card_on_file" else "payment"
        workflow_id = payment_workflows.get(entry.payment_id or "")
    elif kind in ("void", "refund"):
        workflow_id = _give_back_workflow(entry.reference or "", own, payment_workflows.get(entry.payment_id or ""))
    elif kind.startswith("event:"):
        event_type = kind.removeprefix("event:")
        payload = entry.payload if isinstance(entry.payload, dict) else {}
        kind = "status_change" if set(payload) == STATUS_CHANGE_PAYLOAD else "event"
        workflow_id = payment_workflows.get(entry.payment_id or "", own)
    return TimelineItem(
        at=entry.at,
        kind=kind,
        summary=entry.summary,
        workflow_id=workflow_id,
        invoice_id=entry.invoice_id,
        payment_id=entry.payment_id,
        attempt=entry.attempt,
        amount_cents=entry.amount_cents,
        status=entry.status,
        reason=entry.reason,
        event_type=event_type,
        reference=entry.reference,
    )


def _give_back_workflow(attempt_key: str, own: str, payment_workflow: str | None) -> str | None:
    """The workflow that gave money back, from the give-back's attempt key (`foundation.ids`)."""
    business_key = attempt_key.partition(":")[2]
    if business_key.startswith(REFUND_WORKFLOW_KEYS):
        return refund_workflow_id(refund_request_id(business_key))
    if business_key.startswith("cancel:"):
        return cancellation_workflow_id(business_key.split(":")[1])
    if business_key.startswith("settlement-refund:"):
        return own
    return payment_workflow  # a late approval's or an excess's give-back runs where the payment did
