"""The books' side of the trail: invoices, payments, refunds, credit, deposits, ledger and outbox rows."""

from __future__ import annotations

from sqlalchemy import Engine, and_, or_
from sqlmodel import Session, select

from foundation.statuses import PaymentStatus
from models.access import AuditEntry
from models.billing import CreditApplication, Deposit, Invoice, Payment, Refund
from models.ledger import LedgerEntry, LedgerTransaction
from models.outbox import OutboxEvent
from operations.history.entries import DATABASE, HistoryEntry
from operations.history.scope import Scope
from operations.history.values import int_or_none, utc


def database_entries(engine: Engine, scope: Scope, *, with_ledger: bool = True) -> list[HistoryEntry]:
    """Every row of the books in `scope`, one entry each (the ledger's postings left out on request)."""
    entries: list[HistoryEntry] = []
    with Session(engine) as session:
        invoices = list(session.exec(select(Invoice).where(Invoice.id.in_(scope.invoice_ids)))) if scope.invoice_ids else []  # type: ignore[attr-defined]
        for invoice in invoices:
            period = f" for {invoice.period_start} to {invoice.period_end}" if invoice.period_start else ""
            entries.append(
                HistoryEntry(
                    at=utc(invoice.created_at),
                    source=DATABASE,
                    kind="invoice",
                    summary=f"{invoice.kind} invoice {invoice.number} issued{period}; now {invoice.status}, paid {invoice.paid_cents} of {invoice.total_cents}",
                    invoice_id=invoice.id,
                    amount_cents=invoice.total_cents,
                    status=invoice.status,
                    reference=invoice.number,
                )
            )
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
                entries.append(
                    HistoryEntry(
                        at=utc(refund.created_at),
                        source=DATABASE,
                        kind=refund.kind,
                        summary=f"{refund.kind} of {refund.amount_cents} cents on payment {refund.payment_id}: {refund.status}"
                        + (f" ({refund.reason})" if refund.reason else ""),
                        invoice_id=refund.invoice_id,
                        payment_id=refund.payment_id,
                        amount_cents=refund.amount_cents,
                        status=refund.status,
                        reason=refund.reason or None,
                        external_transaction_id=refund.external_transaction_id,
                        reference=refund.attempt_key,
                    )
                )
        if scope.invoice_ids:
            for application in session.exec(select(CreditApplication).where(CreditApplication.invoice_id.in_(scope.invoice_ids))):  # type: ignore[attr-defined]
                entries.append(
                    HistoryEntry(
                        at=utc(application.created_at),
                        source=DATABASE,
                        kind="credit_applied",
                        summary=f"{application.amount_cents} cents of deposit {application.deposit_id} applied",
                        invoice_id=application.invoice_id,
                        amount_cents=application.amount_cents,
                        reference=application.deposit_id,
                    )
                )
        if scope.with_deposits:
            for deposit in session.exec(select(Deposit).where(Deposit.client_id.in_(scope.client_ids))):  # type: ignore[attr-defined]
                entries.append(
                    HistoryEntry(
                        at=utc(deposit.created_at),
                        source=DATABASE,
                        kind="deposit",
                        summary=f"deposit {deposit.id} of {deposit.amount_cents} cents; {deposit.remaining_cents} left ({deposit.status})",
                        payment_id=deposit.payment_id,
                        amount_cents=deposit.amount_cents,
                        status=deposit.status,
                        reference=deposit.id,
                    )
                )
        if with_ledger:
            entries.extend(_ledger_entries(session, scope))
        entries.extend(_outbox_entries(session, scope))
        entries.extend(_actor_entries(session, scope))
    return entries


def _actor_entries(session: Session, scope: Scope) -> list[HistoryEntry]:
    """Who asked for each command and money movement in scope (the token, and the staff member the
    billing system named), from the audit table."""
    about = {"subscription": [scope.subject_id] if scope.subject == "subscription" else [], "invoice": scope.invoice_ids, "payment": scope.payment_ids}
    about["client"] = scope.client_ids
    filters = [and_(AuditEntry.subject_kind == kind, AuditEntry.subject_id.in_(ids)) for kind, ids in about.items() if ids]  # type: ignore[attr-defined]
    if scope.workflow_ids:
        filters.append(AuditEntry.workflow_id.in_(scope.workflow_ids))  # type: ignore[union-attr]
    if not filters:
        return []
    rows = session.exec(select(AuditEntry).where(or_(*filters)).order_by(AuditEntry.id))  # type: ignore[arg-type]
    return [
        HistoryEntry(
            at=utc(row.at),
            source=DATABASE,
            kind="actor",
            summary=f"{row.action} on {row.subject_kind} {row.subject_id} by {row.token}" + (f" for {row.staff}" if row.staff else ""),
            workflow_id=row.workflow_id,
            reference=row.request_key,
        )
        for row in rows
    ]


def _payment_entry(payment: Payment) -> HistoryEntry:
    money = payment.approved_cents if payment.status in (PaymentStatus.APPROVED, PaymentStatus.VOIDED, PaymentStatus.REFUNDED) else payment.amount_cents
    what = f"{payment.method.replace('_', ' ')} {payment.purpose} payment, attempt {payment.attempt}: {payment.status} {money} cents"
    if payment.decline_reason:
        what += f" ({payment.decline_reason}, {payment.decline_class or 'unclassified'})"
    if payment.refunded_cents:
        what += f"; {payment.refunded_cents} cents given back"
    return HistoryEntry(
        at=utc(payment.created_at),
        source=DATABASE,
        kind="payment",
        summary=what,
        invoice_id=payment.invoice_id,
        payment_id=payment.id,
        attempt=payment.attempt,
        amount_cents=money,
        status=payment.status,
        reason=payment.decline_reason,
        external_transaction_id=payment.external_transaction_id,
        reference=payment.attempt_key,
    )


def _ledger_entries(session: Session, scope: Scope) -> list[HistoryEntry]:
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
        out.append(
            HistoryEntry(
                at=utc(txn.created_at),
                source=DATABASE,
                kind=f"ledger:{txn.kind}",
                summary=f"DR {debits} / CR {credits}" + (f" ({txn.memo})" if txn.memo else ""),
                invoice_id=txn.invoice_id,
                payment_id=txn.payment_id,
                amount_cents=sum(leg.amount_cents for leg in legs if leg.amount_cents > 0),
                reference=txn.reference,
                external_transaction_id=_external_id_of(txn.reference),
                payload={"transaction_id": txn.id, "entries": {leg.account: leg.amount_cents for leg in legs}},
            )
        )
    return out


def _external_id_of(reference: str) -> str | None:
    """`payment:<ext>:approved` and `refund:<ext>:done` name the gateway transaction."""
    parts = reference.split(":")
    return parts[1] if len(parts) == 3 and parts[0] in ("payment", "refund") else None


def _outbox_entries(session: Session, scope: Scope) -> list[HistoryEntry]:
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
        out.append(
            HistoryEntry(
                at=utc(event.created_at),
                source=DATABASE,
                kind=f"event:{event.type}",
                summary=f"{event.type} (#{event.seq} on {event.stream})" + (f": {detail}" if detail else ""),
                invoice_id=payload.get("invoice_id"),
                payment_id=payload.get("payment_id"),
                status=payload.get("status"),
                amount_cents=int_or_none(payload.get("amount_cents")),
                reason=payload.get("decline_reason") or payload.get("reason"),
                reference=event.event_id,
                payload=payload,
            )
        )
    return out
