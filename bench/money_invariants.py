"""What must hold for the money after any mix of operations and faults, in ANY correct design.

The exact dunning replay of `bench.invariants` assumes nobody but the schedule touches a
subscription; once people pay at the counter, refund, cancel and change plans, only rules every
correct billing engine keeps remain. They are judged from the gateway's own list (what really
happened to the money) and our database:

- per invoice, the money the gateway approved on it and still keeps (not voided, not refunded; tips
  and surcharges aside) never exceeds the invoice's total (what it kept, once void) except by what
  our books hold as client credit from it (deposit rows with source "overpayment", less what went
  back to the card);
- client credit is never negative: no deposit's `remaining_cents`, no client's `client_credit`
  balance in the ledger, and the two agree per client once nothing is in flight;
- the ledger balances and our books equal the gateway to the cent (`reconcile`);
- no external id was sold twice at the gateway;
- after a cancel-now returned, nothing more is charged on the subscription (no card-on-file sale,
  no terminal sale kept beyond recorded credit) and no new cycle is invoiced.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from bench.chaos_mix import CancelMark
from models.billing import Deposit, Invoice, Payment, Refund
from models.ledger import Account, LedgerEntry, LedgerTransaction
from operations.reconciliation import APPROVED, SALE, reconcile

Row = Mapping[str, Any]


@dataclass
class MoneyVerdict:
    invoices_checked: int = 0
    overcharged_invoices: int = 0
    duplicate_sales: int = 0
    negative_credit: int = 0
    credit_ledger_mismatches: int = 0
    charged_after_cancellation: int = 0
    invoiced_after_cancellation: int = 0
    ledger_balanced: bool = False
    reconciled_with_gateway: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.overcharged_invoices == 0
            and self.duplicate_sales == 0
            and self.negative_credit == 0
            and self.credit_ledger_mismatches == 0
            and self.charged_after_cancellation == 0
            and self.invoiced_after_cancellation == 0
            and self.ledger_balanced
            and self.reconciled_with_gateway
        )

    def counts(self) -> dict[str, Any]:
        return {
            "invoices_checked": self.invoices_checked,
            "overcharged_invoices": self.overcharged_invoices,
            "duplicate_sales": self.duplicate_sales,
            "negative_credit": self.negative_credit,
            "credit_ledger_mismatches": self.credit_ledger_mismatches,
            "charged_after_cancellation": self.charged_after_cancellation,
            "invoiced_after_cancellation": self.invoiced_after_cancellation,
        }


@dataclass(frozen=True)
class _Books:
    """What the database says, read once."""

    invoices: dict[str, Invoice]
    payments: dict[str, Payment]  # by external transaction id
    deposits: list[Deposit]
    credit_refunded: dict[str, int]  # deposit id -> credit a finished refund gave back to the card
    ledger_credit: dict[str, int]  # client id -> client_credit balance (credits negative)


def check_money(engine: Engine, gateway_rows: Sequence[Row], cancels: Mapping[str, CancelMark]) -> MoneyVerdict:
    verdict = MoneyVerdict()
    books = _read_books(engine)
    sales = [r for r in gateway_rows if r["transaction_type"] == SALE]
    _check_duplicate_sales(verdict, sales)
    _check_invoices(verdict, books, sales)
    _check_credit(verdict, books)
    _check_cancellations(verdict, books, sales, cancels)
    report = reconcile(engine, list(gateway_rows))
    verdict.ledger_balanced = report.ledger_balanced
    verdict.reconciled_with_gateway = report.reconciled
    verdict.problems.extend(report.mismatches[:20])
    return verdict


def _read_books(engine: Engine) -> _Books:
    with Session(engine) as session:
        invoices = {i.id: i for i in session.exec(select(Invoice))}
        payments = {p.external_transaction_id: p for p in session.exec(select(Payment))}
        deposits = list(session.exec(select(Deposit)))
        refunded = session.exec(
            select(Refund.deposit_id, func.sum(Refund.credit_cents))
            .where(Refund.status == "done", col(Refund.deposit_id).is_not(None))
            .group_by(Refund.deposit_id)
        ).all()
        ledger = session.exec(
            select(LedgerTransaction.client_id, func.sum(LedgerEntry.amount_cents))
            .join(LedgerTransaction, col(LedgerTransaction.id) == col(LedgerEntry.transaction_id))
            .where(LedgerEntry.account == str(Account.CLIENT_CREDIT))
            .group_by(LedgerTransaction.client_id)
        ).all()
    return _Books(
        invoices,
        payments,
        deposits,
        {str(d): int(c) for d, c in refunded},
        {str(c): int(total) for c, total in ledger},
    )


def kept_for_invoice(row: Row) -> int:
    """What an approved sale still keeps toward its invoice: not voided, less refunds, less the tip
    and surcharge (money asked for beside the invoice)."""
    if row["status"] not in APPROVED or row["voided"]:
        return 0
    extras = int(row.get("tip_cents") or 0) + int(row.get("surcharge_cents") or 0)
    return max(0, int(row["approved_cents"]) - int(row.get("refunded_cents") or 0) - extras)


def _check_duplicate_sales(verdict: MoneyVerdict, sales: Sequence[Row]) -> None:
    seen: dict[str, int] = defaultdict(int)
    for row in sales:
        seen[str(row["external_transaction_id"])] += 1
    for external_id, count in seen.items():
        if count > 1:
            verdict.duplicate_sales += 1
            verdict.problems.append(f"external id {external_id} sold {count} times at the gateway")


def _overpayment_credit(books: _Books) -> dict[str, int]:
    """Per invoice: the credit our books recorded from approvals it did not need, less what of
    that credit went back to the card (it then no longer counts as kept)."""
    by_payment = {p.id: p for p in books.payments.values()}
    credit: dict[str, int] = defaultdict(int)
    for deposit in books.deposits:
        payment = by_payment.get(deposit.payment_id or "")
        if deposit.source == "overpayment" and payment is not None and payment.invoice_id:
            credit[payment.invoice_id] += deposit.amount_cents - books.credit_refunded.get(deposit.id, 0)
    return credit


def _check_invoices(verdict: MoneyVerdict, books: _Books, sales: Sequence[Row]) -> None:
    kept: dict[str, int] = defaultdict(int)
    for row in sales:
        reference = str(row.get("reference") or "")
        if reference in books.invoices:
            kept[reference] += kept_for_invoice(row)
    credit = _overpayment_credit(books)
    verdict.invoices_checked = len(books.invoices)
    for invoice_id, cents in sorted(kept.items()):
        invoice = books.invoices[invoice_id]
        # A void invoice may keep only what it had been paid when it was voided.
        bound = invoice.paid_cents if invoice.status == "void" else invoice.total_cents
        allowed = bound + credit.get(invoice_id, 0)
        if cents > allowed:
            verdict.overcharged_invoices += 1
            verdict.problems.append(
                f"invoice {invoice_id} ({invoice.status}): the gateway keeps {cents} cents, the invoice allows {bound}"
                f" plus {credit.get(invoice_id, 0)} recorded as credit"
            )


def _check_credit(verdict: MoneyVerdict, books: _Books) -> None:
    remaining: dict[str, int] = defaultdict(int)
    for deposit in books.deposits:
        remaining[deposit.client_id] += deposit.remaining_cents
        if deposit.remaining_cents < 0:
            verdict.negative_credit += 1
            verdict.problems.append(f"deposit {deposit.id}: {deposit.remaining_cents} cents remaining")
    for client_id in sorted(set(remaining) | set(books.ledger_credit)):
        owed = -books.ledger_credit.get(client_id, 0)  # a liability: credits are negative
        if owed < 0:
            verdict.negative_credit += 1
            verdict.problems.append(f"client {client_id}: the ledger's client_credit is {owed} cents")
        if owed != remaining.get(client_id, 0):
            verdict.credit_ledger_mismatches += 1
            verdict.problems.append(f"client {client_id}: deposits hold {remaining.get(client_id, 0)} cents, the ledger owes {owed}")


def _check_cancellations(verdict: MoneyVerdict, books: _Books, sales: Sequence[Row], cancels: Mapping[str, CancelMark]) -> None:
    """After a cancel-now returned: no sale of the subscription's invoices the engine sent, no
    terminal sale kept beyond the credit it became, no cycle invoiced."""
    subscription_of = {i.id: i.subscription_id for i in books.invoices.values() if i.subscription_id}
    credit = _overpayment_credit(books)
    for row in sales:
        subscription_id = subscription_of.get(str(row.get("reference") or ""))
        mark = cancels.get(subscription_id or "")
        if mark is None or row["status"] not in APPROVED or datetime.fromisoformat(str(row["created_at"])) <= mark.at:
            continue
        where = f"{subscription_id}: sale {row['external_transaction_id']} on {row['reference']}"
        if row.get("source") != "terminal":
            verdict.charged_after_cancellation += 1
            verdict.problems.append(f"{where} sent after the cancellation")
        elif kept_for_invoice(row) > credit.get(str(row["reference"]), 0):
            verdict.charged_after_cancellation += 1
            verdict.problems.append(f"{where} kept {kept_for_invoice(row)} cents after the cancellation")
    for subscription_id, mark in sorted(cancels.items()):
        late = [i.id for i in books.invoices.values() if i.subscription_id == subscription_id and i.kind == "subscription" and i.id not in mark.invoice_ids]
        if late:
            verdict.invoiced_after_cancellation += 1
            verdict.problems.append(f"{subscription_id}: cycle invoice(s) {', '.join(sorted(late))} issued after the cancellation")
