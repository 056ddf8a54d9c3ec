"""The demo's numbers: what was billed, collected, declined, recovered, refunded - and the checks
that matter most (no double charge, balanced ledger, our books equal to the gateway's)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from models.billing import Deposit, Invoice, Payment, Refund
from models.outbox import OutboxEvent
from models.subscriptions import Subscription
from operations.reconciliation import reconcile
from operations.reports import kept_card_money


def _count(session: Session, query: Any) -> int:
    return int(session.exec(query).one())


def _kept(session: Session, purpose: str) -> int:
    """Card money kept for `purpose`: the report's definition (`operations.reports.kept_card_money`)."""
    return int(session.exec(select(func.coalesce(func.sum(Payment.approved_cents), 0)).where(kept_card_money(purpose))).one())


def summarize(engine: Engine, gateway_rows: list[Mapping[str, Any]], *, wall_seconds: float) -> dict[str, Any]:
    report = reconcile(engine, gateway_rows)
    with Session(engine) as session:
        card_payments = select(func.count()).select_from(Payment).where(Payment.method == "card_on_file")
        declined_invoices = select(Payment.invoice_id).where(Payment.status == "declined", Payment.method == "card_on_file")
        recovered = select(func.count(func.distinct(Payment.invoice_id))).where(
            Payment.status == "approved", Payment.method == "card_on_file", Payment.attempt > 1, col(Payment.invoice_id).in_(declined_invoices)
        )
        events = dict(session.exec(select(OutboxEvent.type, func.count()).group_by(OutboxEvent.type)).all())
        return {
            "subscriptions": _count(session, select(func.count()).select_from(Subscription)),
            "cycles_billed": _count(session, select(func.count()).select_from(Invoice).where(Invoice.kind == "subscription")),
            "charges_approved": _count(session, card_payments.where(col(Payment.status).in_(("approved", "voided")))),
            "charges_declined": _count(session, card_payments.where(Payment.status == "declined")),
            "recovered_by_dunning": _count(session, recovered),
            "suspended": int(events.get("subscription.suspended", 0)),
            "reactivated": int(events.get("subscription.reactivated", 0)),
            "cancelled": int(events.get("subscription.cancelled", 0)),
            "terminal_payments": _count(session, select(func.count()).select_from(Payment).where(Payment.method == "terminal", Payment.approved_cents > 0)),
            "deposits": _count(session, select(func.count()).select_from(Deposit).where(col(Deposit.payment_id).is_not(None))),
            "refunds": _count(session, select(func.count()).select_from(Refund).where(Refund.kind == "refund", Refund.status == "done")),
            "voids": _count(session, select(func.count()).select_from(Refund).where(Refund.kind == "void", Refund.status == "done")),
            "billed_cents": int(session.exec(select(func.coalesce(func.sum(Invoice.total_cents), 0))).one()),
            "collected_cents": _kept(session, "invoice"),
            "deposits_paid_cents": _kept(session, "deposit"),
            "refunded_cents": int(session.exec(select(func.coalesce(func.sum(Refund.amount_cents), 0)).where(Refund.status == "done")).one()),
            "double_charges": report.double_charges,
            "ledger_balanced": report.ledger_balanced,
            "reconciled_with_gateway": report.reconciled,
            "reconciliation_mismatches": report.mismatches[:10],
            "wall_seconds": round(wall_seconds, 1),
        }
