"""A card-on-file charge's decisions before anything is sent: may this invoice be charged to this
card now, and for how much; and what an attempt that sent nothing ended in.

`open_card_attempt` runs under the invoice's lock (its one arbiter) and either answers at once
(paid, in progress, refused) or writes the attempt's payment row and says what to send.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pendulum
from sqlalchemy import ColumnElement, Row, Select, bindparam, func, select
from sqlmodel import Session

from books.attempts import close_attempt, collectable_cents, find_attempt, lock_payment_and_invoice, new_attempt
from books.balances import open_balance
from books.cards import card_expired_on, network_refusal
from foundation.contracts import ChargeOutcome
from foundation.ids import external_id
from foundation.statuses import ChargeResult, InvoiceStatus, NotCharged, PaymentStatus
from models.billing import Invoice, Payment
from models.clinic import Location, SavedCard


@dataclass(frozen=True)
class CardOnFile:
    """The saved card's fields a charge checks and sends (`gravity_ref` is Gravity's token)."""

    id: str
    client_id: str
    gravity_ref: str
    exp_month: int
    exp_year: int
    disabled: bool
    brand: str = ""


@dataclass(frozen=True)
class ChargeSite:
    """What a card-on-file charge needs of the clinic location and of the card (None: no such card)."""

    location_id: str
    timezone: str
    gravity_oid: str
    allow_recurring_gravity: bool
    card: CardOnFile | None


@dataclass(frozen=True)
class ToSend:
    """An attempt's payment row, written and committed, and what to send for it. `fresh`: written
    by this try, so Gravity cannot know it yet; `send` False: the invoice no longer wants its
    amount, so it is only looked up, never sent."""

    payment_id: str
    external_transaction_id: str
    amount_cents: int
    card_ref: str
    oid: str
    fresh: bool
    send: bool = True


def charge_site_query(location_id: ColumnElement[str], card_id: ColumnElement[str], *extra: ColumnElement[Any]) -> Select[Any]:
    """The SELECT of a location's and a card on file's plain columns (`site_of` reads its row), with
    `extra` columns beside them: a caller can read the site in the statement that does its own work
    (the subscription cycle advances its subscription in the same statement) instead of one more."""
    location, card = Location.__table__.c, SavedCard.__table__.c
    return (
        select(
            location.id,
            location.timezone,
            location.gravity_oid,
            location.allow_recurring_gravity,
            card.id.label("card_id"),
            card.client_id,
            card.gravity_ref,
            card.exp_month,
            card.exp_year,
            card.disabled,
            card.brand,
            *extra,
        )
        .select_from(Location.__table__.outerjoin(SavedCard.__table__, card.id == card_id))
        .where(location.id == location_id)
    )


def site_of(row: Row[Any]) -> ChargeSite:
    """The `ChargeSite` in a row of `charge_site_query`."""
    on_file = None
    if row.card_id is not None:
        on_file = CardOnFile(row.card_id, row.client_id, row.gravity_ref, row.exp_month, row.exp_year, row.disabled, row.brand)
    return ChargeSite(row.id, row.timezone, row.gravity_oid, row.allow_recurring_gravity, on_file)


_READ_SITE = charge_site_query(bindparam("location_id"), bindparam("card_id"))
# How often this card was tried (and declined) in the networks' windows, by the workflows' clock.
_CARD_TRIES = select(
    func.count().filter(Payment.status == PaymentStatus.DECLINED, Payment.attempted_at > bindparam("since_30d")),  # type: ignore[arg-type]
    func.count().filter(Payment.attempted_at > bindparam("since_24h")),  # type: ignore[arg-type]
).where(
    Payment.card_id == bindparam("card_id"),
    Payment.attempted_at > bindparam("since_30d"),  # type: ignore[operator]
    Payment.attempted_at <= bindparam("until"),  # type: ignore[operator]
)


def read_charge_site(session: Session, location_id: str, card_id: str | None) -> ChargeSite:
    """The location and the card on file in one SELECT of plain columns, because loading them as
    ORM entities spends a billing worker's CPU on whole objects when the charge reads a few fields."""
    return site_of(session.execute(_READ_SITE, {"location_id": location_id, "card_id": card_id}).one())


def open_card_attempt(
    session: Session,
    invoice: Invoice,
    *,
    card_id: str | None,
    attempt_key: str,
    attempt: int,
    when: datetime,
    site: ChargeSite | None = None,
    new_invoice: bool = False,
) -> ChargeOutcome | ToSend:
    """Under the invoice's lock: the outcome when nothing is to be sent, else the attempt's payment
    row written for what may be collected. `site`: the location and card when the caller read them
    already; `new_invoice`: this transaction created the invoice, so no attempt of it can exist yet
    (a payment row references its invoice) and neither the attempt nor other collectors are read."""
    # The attempt is looked up before anything else: a row an earlier try wrote may have reached
    # Gravity, and is resolved whatever became of the invoice since.
    existing = None if new_invoice else find_attempt(session, attempt_key)
    if existing is not None and existing.status in (PaymentStatus.APPROVED, PaymentStatus.DECLINED):
        return outcome_from_rows(invoice, existing)
    if existing is not None and existing.status != PaymentStatus.PENDING:
        return not_collected(invoice, NotCharged.SUPERSEDED)
    if existing is not None:
        return _resume(session, invoice, existing, when)
    balance = open_balance(invoice)
    if balance == 0:
        return not_collected(invoice, None)
    amount = balance if new_invoice else collectable_cents(session, invoice)
    if amount == 0:
        return ChargeOutcome(invoice.id, ChargeResult.NOT_CHARGED, balance, not_charged_reason=NotCharged.IN_PROGRESS)
    site = site if site is not None else read_charge_site(session, invoice.location_id, card_id)
    refusal = _site_refusal(site, invoice, when)
    if refusal is not None:
        return ChargeOutcome(invoice.id, ChargeResult.NOT_CHARGED, balance, not_charged_reason=refusal)
    assert site.card is not None
    if attempt > 1 and _network_refusal(session, site.card, when) is not None:
        return ChargeOutcome(invoice.id, ChargeResult.NOT_CHARGED, balance, not_charged_reason=NotCharged.NETWORK_LIMIT)
    payment = new_attempt(
        session,
        invoice=invoice,
        attempt_key=attempt_key,
        external_transaction_id=external_id(attempt_key),
        method="card_on_file",
        amount_cents=amount,
        attempt=attempt,
        card_id=site.card.id,
        attempted_at=when,
    )
    return ToSend(payment.id, payment.external_transaction_id, payment.amount_cents, site.card.gravity_ref, site.gravity_oid, fresh=True)


def _resume(session: Session, invoice: Invoice, pending: Payment, when: datetime) -> ToSend:
    """An attempt an earlier try wrote: sent again (after a lookup) only while the invoice still
    wants all of it from the same usable card; otherwise only looked up."""
    site = read_charge_site(session, invoice.location_id, pending.card_id)
    wanted = pending.amount_cents <= collectable_cents(session, invoice, besides=pending.id)
    send = wanted and _site_refusal(site, invoice, when) is None
    card_ref = site.card.gravity_ref if site.card is not None else ""
    return ToSend(pending.id, pending.external_transaction_id, pending.amount_cents, card_ref, site.gravity_oid, fresh=False, send=send)


def close_refused(session: Session, payment_id: str, message: str) -> None:
    """Close an attempt Gravity refused before processing: nothing was taken, and the row must not
    keep its reservation on the invoice while a person mends the cause."""
    payment, _ = lock_payment_and_invoice(session, payment_id)
    close_attempt(session, payment, status=PaymentStatus.FAILED, message=f"refused by Gravity: {message}")


def supersede(session: Session, payment_id: str) -> ChargeOutcome:
    """Close an attempt Gravity never saw because the invoice changed first (nothing was taken)."""
    payment, invoice = lock_payment_and_invoice(session, payment_id)
    close_attempt(session, payment, status=PaymentStatus.FAILED, message="not sent: the invoice changed before this attempt reached Gravity")
    return not_collected(invoice, NotCharged.SUPERSEDED)


def _network_refusal(session: Session, card: CardOnFile, when: datetime) -> str | None:
    """Why the card networks forbid retrying this card at `when` (retries only: a cycle's first
    attempt is no reattempt)."""
    params = {"card_id": card.id, "since_30d": when - timedelta(days=30), "since_24h": when - timedelta(hours=24), "until": when}
    declines, tries = session.execute(_CARD_TRIES, params).one()
    return network_refusal(card.brand, declines_in_30_days=int(declines), tries_in_24_hours=int(tries))


def _site_refusal(site: ChargeSite, invoice: Invoice, when: datetime) -> NotCharged | None:
    """Why the card on file cannot be charged for this invoice now (a `not_charged_reason`)."""
    if not site.allow_recurring_gravity:
        return NotCharged.CHARGING_DISABLED
    card = site.card
    if card is None or card.disabled or card.client_id != invoice.client_id:
        return NotCharged.NO_CARD
    if card_expired_on(card.exp_month, card.exp_year, pendulum.instance(when).in_timezone(site.timezone).date()):
        return NotCharged.CARD_EXPIRED
    return None


def not_collected(invoice: Invoice, reason: NotCharged | None) -> ChargeOutcome:
    """The outcome of a try that sent nothing: paid, closed (void) or `reason` with the balance."""
    if invoice.status == InvoiceStatus.PAID:
        return ChargeOutcome(invoice.id, ChargeResult.PAID, 0)
    if invoice.status == InvoiceStatus.VOID:
        return ChargeOutcome(invoice.id, ChargeResult.NOT_CHARGED, 0, not_charged_reason=NotCharged.INVOICE_CLOSED)
    return ChargeOutcome(invoice.id, ChargeResult.NOT_CHARGED, open_balance(invoice), not_charged_reason=reason)


def outcome_from_rows(invoice: Invoice, payment: Payment) -> ChargeOutcome:
    """A charge's outcome as the books hold it: paid or partly paid, or declined."""
    balance = open_balance(invoice)
    if payment.status == PaymentStatus.APPROVED:
        outcome = ChargeResult.PAID if balance == 0 else ChargeResult.PARTIAL
        return ChargeOutcome(invoice.id, outcome, balance, charged_cents=payment.approved_cents, external_transaction_id=payment.external_transaction_id)
    return ChargeOutcome(
        invoice.id,
        ChargeResult.DECLINED,
        balance,
        decline_reason=payment.decline_reason,
        decline_class=payment.decline_class,
        external_transaction_id=payment.external_transaction_id,
    )
