"""Deferred revenue: a yearly cycle's fees are earned a twelfth a month over the year they pay for.

A yearly cycle's invoice credits `deferred_revenue` instead of revenue when it is issued (what the
client owes, or has paid, for months not yet served is a liability). Once the invoice is paid, one
recognition posting per month of its period moves a twelfth of each line from deferred revenue to
the line's revenue account, on the day that month of service starts (in the location's zone), as a
monthly plan's fee is booked on its due day. The twelfths are exact in cents: the last month takes
the remainder, so the twelve sum to the line. Each posting's reference names the invoice and the
month, so a sweep that runs twice, or two that race, post each month once; a month missed while the
invoice was unpaid is caught up by the next sweep.

Money given back on a deferred invoice (a refund or void of its payment, a cancellation's settlement,
a downgrade's credit) is taken off what is still deferred first, and only what exceeds that off the
revenue already recognized: the client is given back months not yet served before months served.
The give-back's own posting stays as it was (refunds, or revenue for a credit) and a second posting
(`give_back_unearned`) moves the unearned part from deferred revenue to that account, so each
give-back's split can be read and reversed on its own. Once anything was given back, each later month
recognizes an equal share of what is left over the months left (the last month the rest), so the
deferred balance still empties to the cent by the twelfth month.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pendulum
from sqlalchemy import text
from sqlmodel import Session, col, select

from books.attempts import lock_invoice
from books.ledger import entries_of, post_for_invoice, posted, split_pro_rata
from foundation.ids import revenue_recognized_reference, unearned_given_back_reference, unearned_restored_reference
from foundation.statuses import InvoiceStatus
from models.billing import Invoice, InvoiceLine
from models.ledger import Account, LedgerTransaction

RECOGNITION_MONTHS = 12
RECOGNITION_KIND = "revenue_recognized"
GIVEN_BACK_KIND = "unearned_given_back"
RESTORED_KIND = "unearned_restored"
#: Where each line of a deferred invoice is earned to.
EARNED_AS = {"plan_fee": Account.PLAN_REVENUE, "enrollment_fee": Account.FEE_REVENUE}
#: How far back a sweep looks for a period still being recognized: a year, and the dunning that
#: may leave a yearly invoice unpaid for most of another.
LOOK_BACK = timedelta(days=2 * 366)


def defers(interval_months: int) -> bool:
    """Whether a plan billed every `interval_months` is earned over its period (a yearly one)."""
    return interval_months == RECOGNITION_MONTHS


def revenue_account(line_account: Account, interval_months: int) -> Account:
    """The account a cycle line is credited to when issued: deferred revenue for a yearly plan."""
    return Account.DEFERRED_REVENUE if defers(interval_months) else line_account


def installments(cents: int, months: int = RECOGNITION_MONTHS) -> list[int]:
    """`cents` in `months` equal parts to the cent, the remainder in the last."""
    part = cents // months
    return [part] * (months - 1) + [cents - part * (months - 1)]


def months_due(period_start: date, today: date, months: int = RECOGNITION_MONTHS) -> int:
    """How many months of a period starting `period_start` have begun by `today`."""
    start = pendulum.Date(period_start.year, period_start.month, period_start.day)
    return sum(1 for k in range(months) if start.add(months=k) <= today)


@dataclass(frozen=True)
class Deferred:
    """A paid invoice with revenue still deferred: what a sweep recognizes from."""

    invoice_id: str
    period_start: date
    timezone: str
    deferred_cents: int
    recognized_months: int


# Paid subscription invoices of recent periods whose issue posting credited deferred revenue and
# whose next month to recognize has begun (so a sweep's page never fills with invoices that have
# nothing due, and newer ones are not starved), with the months recognized so far.
_CANDIDATES = text(
    "SELECT i.id, i.period_start, l.timezone, -e.amount_cents AS deferred_cents, r.recognized"
    " FROM invoice i"
    " JOIN location l ON l.id = i.location_id"
    " JOIN ledger_transaction t ON t.invoice_id = i.id AND t.kind = 'invoice_issued'"
    " JOIN ledger_entry e ON e.transaction_id = t.id AND e.account = :deferred"
    " CROSS JOIN LATERAL (SELECT count(*)::int AS recognized FROM ledger_transaction x WHERE x.invoice_id = i.id AND x.kind = :kind) r"
    " WHERE i.kind = 'subscription' AND i.status = :paid AND i.period_start >= :since AND i.period_start <= :until"
    " AND r.recognized < :months AND i.period_start + make_interval(months => r.recognized) <= :until"
    " ORDER BY i.period_start, i.id LIMIT :limit"
)


def deferred_invoices(session: Session, as_of: datetime, *, limit: int) -> list[Deferred]:
    """Paid invoices with months of deferred revenue not yet recognized (oldest period first)."""
    today = as_of.date()
    params = {
        "kind": RECOGNITION_KIND,
        "deferred": str(Account.DEFERRED_REVENUE),
        "paid": str(InvoiceStatus.PAID),
        "since": today - LOOK_BACK,
        "until": today + timedelta(days=1),  # a location east of UTC may already be on tomorrow
        "months": RECOGNITION_MONTHS,
        "limit": limit,
    }
    rows = session.execute(_CANDIDATES, params).all()
    return [Deferred(row.id, row.period_start, row.timezone, int(row.deferred_cents), int(row.recognized)) for row in rows]


def recognize_invoice(session: Session, deferred: Deferred, as_of: datetime) -> int:
    """Post every month of `deferred` begun by `as_of` (its location's day) and not yet posted;
    returns how many were posted now. Runs under the invoice's lock, so a void or a give-back
    cannot interleave."""
    today = pendulum.instance(as_of).in_timezone(deferred.timezone).date()
    due = months_due(deferred.period_start, today)
    if due <= deferred.recognized_months:
        return 0
    invoice = lock_invoice(session, deferred.invoice_id)
    if invoice is None or invoice.status != InvoiceStatus.PAID:
        return 0
    lines = _line_totals(session, deferred)
    recognized = recognized_on(session, invoice.id)
    left = deferred_left(session, invoice.id)
    given_back = sum(lines.values()) - sum(recognized.values()) - left
    posted_now = 0
    for month in range(deferred.recognized_months + 1, due + 1):
        if given_back:
            parts = _share_of_rest(lines, recognized, left, month)
        elif month == RECOGNITION_MONTHS:
            # The last month takes what is left: a give-back restored after a smaller month is made up here.
            parts = {account: cents - recognized.get(account, 0) for account, cents in lines.items()}
        else:
            parts = {account: installments(cents)[month - 1] for account, cents in lines.items()}
        entries = [(account, -cents) for account, cents in sorted(parts.items())]
        entries.append((Account.DEFERRED_REVENUE, sum(parts.values())))
        reference = revenue_recognized_reference(invoice.id, month)
        memo = f"month {month} of {RECOGNITION_MONTHS} from {deferred.period_start.isoformat()}"
        if post_for_invoice(session, invoice, reference=reference, kind=RECOGNITION_KIND, entries=entries, memo=memo) is not None:
            posted_now += 1
        for account, cents in parts.items():
            recognized[account] = recognized.get(account, 0) + cents
        left -= sum(parts.values())
    return posted_now


def _line_totals(session: Session, deferred: Deferred) -> dict[Account, int]:
    """What the invoice deferred for each revenue account, from its lines (all to plan revenue when
    the lines do not add up to what was deferred, so the deferred balance still empties)."""
    lines = session.exec(select(InvoiceLine.kind, InvoiceLine.amount_cents).where(InvoiceLine.invoice_id == deferred.invoice_id)).all()
    by_account: dict[Account, int] = {}
    for kind, cents in lines:
        account = EARNED_AS.get(kind, Account.PLAN_REVENUE)
        by_account[account] = by_account.get(account, 0) + int(cents)
    if sum(by_account.values()) != deferred.deferred_cents:
        by_account = {Account.PLAN_REVENUE: deferred.deferred_cents}
    return by_account


def _share_of_rest(lines: dict[Account, int], recognized: dict[Account, int], left: int, month: int) -> dict[Account, int]:
    """Month `month`'s part of what is still deferred after a give-back: an equal share over the
    months left (all of it in the last), split across the revenue accounts by what each has not
    been recognized yet."""
    if left <= 0:
        return {}
    unearned = {account: cents - recognized.get(account, 0) for account, cents in lines.items()}
    shares = split_pro_rata(left, {account: cents for account, cents in unearned.items() if cents > 0}) or {Account.PLAN_REVENUE: left}
    months_left = RECOGNITION_MONTHS - month + 1
    return {account: cents if months_left == 1 else cents // months_left for account, cents in shares.items()}


def deferred_left(session: Session, invoice_id: str) -> int:
    """What the invoice's postings still hold in deferred revenue (positive: not yet earned)."""
    return int(
        session.execute(
            text(
                "SELECT coalesce(-sum(e.amount_cents), 0) FROM ledger_entry e JOIN ledger_transaction t ON t.id = e.transaction_id"
                " WHERE t.invoice_id = :invoice_id AND e.account = :deferred"
            ),
            {"invoice_id": invoice_id, "deferred": str(Account.DEFERRED_REVENUE)},
        ).scalar_one()
    )


def give_back_unearned(session: Session, invoice: Invoice, cents: int, *, source_reference: str, against: Account, memo: str) -> int:
    """Move the part of `cents` given back on `invoice` that is still deferred (at most what is
    left) from deferred revenue to `against`, the account the give-back's own posting debited;
    returns the cents moved. Call under the invoice's lock; once per give-back (its reference)."""
    reference = unearned_given_back_reference(source_reference)
    earlier = posted(session, reference)
    if earlier is not None:
        return sum(entry.amount_cents for entry in entries_of(session, earlier) if entry.account == Account.DEFERRED_REVENUE)
    taken = min(cents, deferred_left(session, invoice.id))
    if taken <= 0:
        return 0
    post_for_invoice(session, invoice, reference=reference, kind=GIVEN_BACK_KIND, memo=memo, entries=[(Account.DEFERRED_REVENUE, taken), (against, -taken)])
    return taken


def restore_unearned(session: Session, invoice: Invoice, *, source_reference: str | None = None) -> int:
    """Reverse the invoice's deferred give-backs (only `source_reference`'s when given): a voided
    invoice reverses its issue posting whole, and money taken back off its paid amount is no longer
    given back, so what they took off deferred revenue returns there first. Returns the cents."""
    query = select(LedgerTransaction).where(LedgerTransaction.invoice_id == invoice.id, LedgerTransaction.kind == GIVEN_BACK_KIND)
    if source_reference is not None:
        query = query.where(LedgerTransaction.reference == unearned_given_back_reference(source_reference))
    restored = 0
    for given_back in session.exec(query.order_by(col(LedgerTransaction.id))).all():
        entries = [(Account(entry.account), -entry.amount_cents) for entry in entries_of(session, given_back)]
        reference = unearned_restored_reference(given_back.reference)
        if post_for_invoice(session, invoice, reference=reference, kind=RESTORED_KIND, memo=given_back.memo, entries=entries) is not None:
            restored += sum(-cents for account, cents in entries if account == Account.DEFERRED_REVENUE)
    return restored


def recognize_rest(session: Session, invoice: Invoice, *, memo: str) -> int:
    """Recognize at once what is still deferred on `invoice` (a written-off one: what was paid on it
    stays earned, and no monthly posting will come for a void invoice). Posted under the last
    month's reference, which a void invoice never reaches otherwise; returns the cents recognized."""
    left = deferred_left(session, invoice.id)
    if left <= 0:
        return 0
    weights: dict[Account, int] = {}
    for kind, cents in session.exec(select(InvoiceLine.kind, InvoiceLine.amount_cents).where(InvoiceLine.invoice_id == invoice.id)).all():
        account = EARNED_AS.get(kind, Account.PLAN_REVENUE)
        weights[account] = weights.get(account, 0) + int(cents)
    shares = split_pro_rata(left, weights) or {Account.PLAN_REVENUE: left}
    entries = [(Account.DEFERRED_REVENUE, left), *((account, -cents) for account, cents in shares.items())]
    reference = revenue_recognized_reference(invoice.id, RECOGNITION_MONTHS)
    post_for_invoice(session, invoice, reference=reference, kind=RECOGNITION_KIND, entries=entries, memo=memo)
    return left


def recognized_on(session: Session, invoice_id: str) -> dict[Account, int]:
    """What the invoice's recognition postings moved to each revenue account so far (positive)."""
    rows = session.execute(
        text(
            "SELECT e.account, -sum(e.amount_cents) FROM ledger_entry e JOIN ledger_transaction t ON t.id = e.transaction_id"
            " WHERE t.invoice_id = :invoice_id AND t.kind = :kind AND e.account <> :deferred GROUP BY e.account"
        ),
        {"invoice_id": invoice_id, "kind": RECOGNITION_KIND, "deferred": str(Account.DEFERRED_REVENUE)},
    ).all()
    return {Account(account): int(cents) for account, cents in rows if cents}


def unwind_recognized(reversal: list[tuple[Account, int]], recognized: dict[Account, int]) -> list[tuple[Account, int]]:
    """A reversal of an issue posting that takes what was already recognized back off revenue and
    only the rest off deferred revenue, so a voided invoice leaves neither behind."""
    if not recognized:
        return reversal
    taken = sum(recognized.values())
    adjusted = [(account, cents - taken if account == Account.DEFERRED_REVENUE else cents) for account, cents in reversal]
    return adjusted + list(recognized.items())
