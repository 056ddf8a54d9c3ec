"""The statuses, outcomes and reasons the engine stores, sends and records, one StrEnum each.

A StrEnum member is its string: it compares and hashes equal to it, and the database, the JSON of
workflow payloads and recorded histories hold the same bytes as before. Values are on the wire and
in CHECK constraints, so a value never changes; a new one needs a migration where a CHECK names them.
"""

from __future__ import annotations

from enum import StrEnum


class PaymentStatus(StrEnum):
    """A payment row's status (`payment.status`)."""

    PENDING = "pending"  # written, perhaps sent: holds its amount on the invoice until it ends
    APPROVED = "approved"
    DECLINED = "declined"
    UNKNOWN = "unknown"  # no answer from Gravity: left for manual review
    VOIDED = "voided"
    REFUNDED = "refunded"
    FAILED = "failed"  # closed without moving money (refused, cancelled, never sent)


#: A payment in one of these has stopped moving: it is settled (`payment.settled_at`) on first reaching one.
SETTLED_PAYMENT_STATUSES: frozenset[PaymentStatus] = frozenset(
    (PaymentStatus.APPROVED, PaymentStatus.DECLINED, PaymentStatus.FAILED, PaymentStatus.VOIDED, PaymentStatus.REFUNDED)
)


class InvoiceStatus(StrEnum):
    """An invoice row's status (`invoice.status`)."""

    OPEN = "open"
    PAID = "paid"
    VOID = "void"


class RefundStatus(StrEnum):
    """A refund (or void) row's status (`refund.status`)."""

    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"
    UNKNOWN = "unknown"


#: A refund (or void) in one of these has stopped moving: settled (`refund.settled_at`) on first reaching one.
SETTLED_REFUND_STATUSES: frozenset[RefundStatus] = frozenset((RefundStatus.DONE, RefundStatus.FAILED))


class DepositStatus(StrEnum):
    """A client-credit row's status (`deposit.status`)."""

    HELD = "held"  # spendable on the client's invoices
    USED = "used"
    REFUNDED = "refunded"
    RETURNING = "returning"  # an approval's excess on its way back to the card: not spendable


class SubscriptionStatus(StrEnum):
    """A subscription's status: its row's, its workflow's and its search attribute's."""

    PENDING = "pending"  # the row before its first charge (the workflow already calls it active)
    ACTIVE = "active"
    PAST_DUE = "past_due"
    SUSPENDED = "suspended"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    ENDED = "ended"


#: The statuses a subscription never leaves: it bills nothing more and takes no command.
FINAL_SUBSCRIPTION_STATUSES: tuple[SubscriptionStatus, ...] = (SubscriptionStatus.CANCELLED, SubscriptionStatus.ENDED)


class WaitingFor(StrEnum):
    """What an open invoice of a subscription waits for before its next attempt."""

    RETRY = "retry"  # its dunning retry moment (`next_attempt_at`)
    NEW_CARD = "new_card"
    CHARGING_ENABLED = "charging_enabled"  # the location to allow card-on-file charging again
    PAYMENT = "payment"  # a person: dunning ran out, or an incident


class ChargeResult(StrEnum):
    """What one collection attempt of an invoice ended in (`ChargeOutcome.outcome`)."""

    PAID = "paid"
    PARTIAL = "partial"
    DECLINED = "declined"
    NOT_CHARGED = "not_charged"


class NotCharged(StrEnum):
    """Why a collection attempt sent nothing (`ChargeOutcome.not_charged_reason`)."""

    CHARGING_DISABLED = "charging_disabled"
    CARD_EXPIRED = "card_expired"
    NO_CARD = "no_card"
    INVOICE_CLOSED = "invoice_closed"
    # The next three take no dunning step: another collector (the counter terminal, an earlier
    # attempt) holds what is left of the invoice; the try's unsent row was closed because the
    # invoice changed first (a new attempt asks for what is left); or the card networks'
    # reattempt limits forbid another try of this card now (a later one may pass).
    IN_PROGRESS = "collection_in_progress"
    SUPERSEDED = "superseded"
    NETWORK_LIMIT = "network_limit"


class CycleOutcome(StrEnum):
    """How a line of a subscription's recent history (`CycleRecord.outcome`) ended."""

    PAID = "paid"
    DECLINED = "declined"
    NOT_CHARGED = "not_charged"
    VOID = "void"
    INCIDENT = "incident"


class PaymentResult(StrEnum):
    """How a counter payment (terminal sale or card deposit) ended, as its workflow answers; where
    none of these applies the answer is the payment row's `PaymentStatus`."""

    APPROVED = "approved"
    PARTIAL = "partial"
    DECLINED = "declined"
    CANCELLED = "cancelled"  # by staff, before the customer finished
    CANCELLED_ON_DEVICE = "cancelled_on_device"  # by the customer, at the terminal
    LATE_APPROVAL_VOIDED = "late_approval_voided"
    MANUAL_REVIEW = "manual_review"
    REFUSED = "refused"  # nothing was sent: the request could not be made
    FAILED = "failed"  # Gravity refused it for good


class RefundResultStatus(StrEnum):
    """How a refund movement ended (`RefundResult.status`)."""

    DONE = "done"
    REFUSED = "refused"  # what it needed was taken after the request was checked
    FAILED = "failed"  # Gravity would not give the money back
