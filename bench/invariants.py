"""The chaos run's verdict: what must hold after any mix of crashes, faults and declines.

Checked independently of the workflows' own view, from two sources that do not trust each other:
the gateway's transaction list (the sandbox's record of what was charged) and our database. The
expected behaviour is derived from the calendar and the dunning policy, replayed over what the
gateway actually answered to each attempt id (attempt ids are deterministic, so the gateway's list
tells which attempt of which cycle each charge was):

- every cycle of the term is invoiced exactly once, at the calendar's due instant, until a cycle's
  dunning is exhausted (the subscription is then suspended and later cycles are skipped, not billed);
- after a hard decline the card is disabled (no issuer approves it again): later cycles are
  invoiced and left open for a new card, never charged to it;
- attempts of a cycle are numbered 1, 2, ... without gaps, reach the gateway in that order, and stop
  exactly where the policy says: at an approval, at a hard decline (wait for a new card), or after
  the schedule's last retry; a soft decline before that is always followed by the next attempt;
- each paid cycle has exactly one approved sale at the gateway, for the invoice's amount, and no
  reference kept more money than it asked for (`count_double_charges`);
- our payments equal the gateway's to the cent (`reconcile`), and the ledger is balanced.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, select

from foundation.ids import charge_key, external_id
from gravity.conventions import DeclineClass, classify_decline
from models.billing import Invoice, Payment
from operations.reconciliation import SALE, count_double_charges, reconcile
from workflows import calendar


@dataclass(frozen=True)
class Subscriber:
    subscription_id: str
    start_date: date


@dataclass(frozen=True)
class Terms:
    months: int
    price_cents: int
    retry_offsets_days: tuple[int, ...]
    timezone: str
    charge_at: time


@dataclass
class Verdict:
    double_charges: int = 0
    missed_cycles: int = 0
    duplicated_cycles: int = 0
    dunning_violations: int = 0
    ledger_balanced: bool = False
    reconciled_with_gateway: bool = False
    cycles_expected: int = 0
    cycles_suspended: int = 0  # cycles not billed because the subscription was suspended (dead card or exhausted dunning)
    cycles_paid: int = 0
    declines: int = 0
    suspended: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def cycles_ok(self) -> bool:
        """The cycles' checks alone (`check_cycles`), without the books."""
        return self.double_charges == 0 and self.missed_cycles == 0 and self.duplicated_cycles == 0 and self.dunning_violations == 0

    @property
    def ok(self) -> bool:
        return self.cycles_ok and self.ledger_balanced and self.reconciled_with_gateway


def _is_hard(row: Mapping[str, Any]) -> bool:
    """The gateway's own words decide (its decline table), not our stored classification."""
    return classify_decline(str(row.get("result_message") or ""))[1] == DeclineClass.HARD


def check(engine: Engine, gateway_rows: Sequence[Mapping[str, Any]], subscribers: Sequence[Subscriber], terms: Terms) -> Verdict:
    """The exact checks of every subscriber's cycles, and our books against the whole gateway."""
    verdict = check_cycles(engine, gateway_rows, subscribers, terms)
    report = reconcile(engine, list(gateway_rows))
    verdict.ledger_balanced = report.ledger_balanced
    verdict.reconciled_with_gateway = report.reconciled
    verdict.problems.extend(report.mismatches[:20])
    return verdict


def check_cycles(engine: Engine, gateway_rows: Sequence[Mapping[str, Any]], subscribers: Sequence[Subscriber], terms: Terms) -> Verdict:
    """Replay the calendar and the dunning schedule over `subscribers` (nobody else touched them)
    and count double charges among `gateway_rows`; the books are left to `reconcile`."""
    verdict = Verdict()
    sales_by_ext: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    order: dict[str, int] = {}
    for position, row in enumerate(gateway_rows):  # the sandbox lists them in commit order
        if row["transaction_type"] == SALE:
            sales_by_ext[row["external_transaction_id"]].append(row)
            order.setdefault(row["external_transaction_id"], position)
    approved_by_ref: dict[str, int] = defaultdict(int)
    for row in gateway_rows:
        if row["transaction_type"] == SALE and row["status"] in ("approved", "partial") and not row["voided"]:
            approved_by_ref[str(row["reference"])] += 1
    verdict.double_charges = count_double_charges(gateway_rows) + sum(1 for rows in sales_by_ext.values() if len(rows) > 1)

    with Session(engine) as session:
        invoices = list(session.exec(select(Invoice).where(Invoice.kind == "subscription")))
        payments = list(session.exec(select(Payment).where(Payment.method == "card_on_file")))
    invoices_of: dict[str, list[Invoice]] = defaultdict(list)
    for invoice in invoices:
        invoices_of[str(invoice.subscription_id)].append(invoice)
    payments_of: dict[str, dict[int, Payment]] = defaultdict(dict)
    for payment in payments:
        payments_of[str(payment.invoice_id)][payment.attempt] = payment

    max_attempts = 1 + len(terms.retry_offsets_days)
    for sub in subscribers:
        _check_subscription(verdict, sub, terms, invoices_of.get(sub.subscription_id, []), payments_of, sales_by_ext, order, approved_by_ref, max_attempts)
    return verdict


def _check_subscription(
    verdict: Verdict,
    sub: Subscriber,
    terms: Terms,
    invoices: list[Invoice],
    payments_of: Mapping[str, Mapping[int, Payment]],
    sales_by_ext: Mapping[str, list[Mapping[str, Any]]],
    order: Mapping[str, int],
    approved_by_ref: Mapping[str, int],
    max_attempts: int,
) -> None:
    by_period: dict[date, list[Invoice]] = defaultdict(list)
    for invoice in invoices:
        by_period[invoice.period_start].append(invoice)  # type: ignore[index]  # a cycle invoice always has its period
    expected_periods: set[date] = set()
    suspended = False
    card_dead_at = _hard_decline_moment(sub, list(by_period), sales_by_ext)
    for cycle in range(calendar.cycles_in_term(terms.months, 1)):
        period_start, _ = calendar.period_for(sub.start_date, cycle, interval_months=1)
        if suspended:
            # After an exhausted schedule the subscription is suspended: no new cycles, each counted.
            verdict.cycles_suspended += 1
            continue
        expected_periods.add(period_start)
        verdict.cycles_expected += 1
        found = by_period.get(period_start, [])
        where = f"{sub.subscription_id} cycle {cycle} ({period_start})"
        due = calendar.due_instant(sub.start_date, cycle, tz=terms.timezone, interval_months=1, charge_at=terms.charge_at)
        if not found and card_dead_at is not None and due > card_dead_at:
            # A hard decline disabled the card; after the plan's card-wait cycles the engine
            # suspends the subscription and bills no further cycle until a new card is saved.
            expected_periods.discard(period_start)
            verdict.cycles_expected -= 1
            verdict.cycles_suspended += 1
            suspended = True
            continue
        if not found:
            verdict.missed_cycles += 1
            verdict.problems.append(f"{where}: no invoice")
            continue
        if len(found) > 1:
            verdict.duplicated_cycles += 1
            verdict.problems.append(f"{where}: {len(found)} invoices")
        invoice = found[0]
        if invoice.due_at != due:
            verdict.dunning_violations += 1
            verdict.problems.append(f"{where}: invoice due {invoice.due_at}, calendar says {due}")
        suspended = _check_attempts(
            verdict,
            where,
            sub,
            period_start,
            invoice,
            payments_of.get(invoice.id, {}),
            sales_by_ext,
            order,
            approved_by_ref,
            max_attempts,
            terms,
            card_dead_at,
        )
    for period_start in by_period:
        if period_start not in expected_periods:
            verdict.duplicated_cycles += 1
            verdict.problems.append(f"{sub.subscription_id}: unexpected invoice for {period_start}")
    if suspended:
        verdict.suspended += 1


def _attempt_rows(sub: Subscriber, period_start: date, sales_by_ext: Mapping[str, list[Mapping[str, Any]]]) -> list[Mapping[str, Any]]:
    """The gateway's first answer to each attempt of the cycle, attempt 1 onwards, until one is missing."""
    answers = []
    attempt = 1
    while rows := sales_by_ext.get(external_id(charge_key(sub.subscription_id, period_start, attempt))):
        answers.append(rows[0])
        attempt += 1
    return answers


def _hard_decline_moment(sub: Subscriber, periods: list[date], sales_by_ext: Mapping[str, list[Mapping[str, Any]]]) -> datetime | None:
    """When the subscription's card first met a hard decline (the engine then disables it), if ever."""
    moments = [
        _at(row)
        for period_start in periods
        for row in _attempt_rows(sub, period_start, sales_by_ext)
        if row["status"] not in ("approved", "partial") and _is_hard(row)
    ]
    return min(moments, default=None)


def _at(row: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(str(row["created_at"]))


def _check_attempts(
    verdict: Verdict,
    where: str,
    sub: Subscriber,
    period_start: date,
    invoice: Invoice,
    ours: Mapping[int, Payment],
    sales_by_ext: Mapping[str, list[Mapping[str, Any]]],
    order: Mapping[str, int],
    approved_by_ref: Mapping[str, int],
    max_attempts: int,
    terms: Terms,
    card_dead_at: datetime | None,
) -> bool:
    """Replay dunning over the gateway's answers for this cycle; True if the schedule ran out.
    From `card_dead_at` on (a hard decline disabled the card) nothing more may be sent to the card:
    the cycle waits, open, for a new one."""
    answers = _attempt_rows(sub, period_start, sales_by_ext)
    if card_dead_at is not None and any(_at(a) > card_dead_at for a in answers):
        verdict.dunning_violations += 1
        verdict.problems.append(f"{where}: charged a card a hard decline had disabled")
    attempt = len(answers) + 1
    beyond = external_id(charge_key(sub.subscription_id, period_start, attempt + 1))
    if beyond in sales_by_ext:
        verdict.dunning_violations += 1
        verdict.problems.append(f"{where}: attempt {attempt + 1} reached the gateway without attempt {attempt}")
    if not answers and card_dead_at is not None and invoice.created_at is not None and invoice.created_at > card_dead_at:
        if invoice.status != "open":
            verdict.dunning_violations += 1
            verdict.problems.append(f"{where}: invoice {invoice.status} while its card is disabled")
        return False
    if not answers:
        verdict.missed_cycles += 1
        verdict.problems.append(f"{where}: never charged at the gateway")
        return False
    positions = [order[a["external_transaction_id"]] for a in answers]
    if positions != sorted(positions):
        verdict.dunning_violations += 1
        verdict.problems.append(f"{where}: attempts reached the gateway out of order")
    exhausted = False
    for index, answer in enumerate(answers, start=1):
        last = index == len(answers)
        approved = answer["status"] in ("approved", "partial")
        if not approved:
            verdict.declines += 1
        if approved or _is_hard(answer):
            if not last:
                verdict.dunning_violations += 1
                verdict.problems.append(f"{where}: attempt {index + 1} after attempt {index} was {'approved' if approved else 'a hard decline'}")
            break
        if last and index < max_attempts and card_dead_at is None:
            verdict.dunning_violations += 1
            verdict.problems.append(f"{where}: soft decline on attempt {index} of {max_attempts} and no retry")
        if last and index >= max_attempts:
            exhausted = True
    if len(answers) > max_attempts:
        verdict.dunning_violations += 1
        verdict.problems.append(f"{where}: {len(answers)} attempts, the schedule allows {max_attempts}")
    # Our rows for the same attempts: same outcome, same amount.
    for index, answer in enumerate(answers, start=1):
        payment = ours.get(index)
        gateway_status = "approved" if answer["status"] in ("approved", "partial") else "declined"
        if payment is None or payment.status != gateway_status or payment.external_transaction_id != answer["external_transaction_id"]:
            verdict.dunning_violations += 1
            verdict.problems.append(f"{where}: attempt {index} is {gateway_status} at the gateway, ours {payment.status if payment else 'missing'}")
    if len(ours) > len(answers):
        verdict.dunning_violations += 1
        verdict.problems.append(f"{where}: {len(ours)} payment rows, {len(answers)} attempts at the gateway")
    paid = answers[-1]["status"] in ("approved", "partial")
    sales = approved_by_ref.get(invoice.id, 0)
    if paid:
        verdict.cycles_paid += 1
        if sales != 1:
            verdict.duplicated_cycles += 1 if sales > 1 else 0
            verdict.problems.append(f"{where}: paid with {sales} approved sales at the gateway")
        if invoice.status != "paid" or invoice.paid_cents != terms.price_cents or int(answers[-1]["approved_cents"]) != terms.price_cents:
            verdict.dunning_violations += 1
            verdict.problems.append(f"{where}: invoice {invoice.status} {invoice.paid_cents} cents after an approval of {answers[-1]['approved_cents']}")
    elif invoice.status != "open":
        verdict.dunning_violations += 1
        verdict.problems.append(f"{where}: invoice {invoice.status} without an approved sale")
    return exhausted
