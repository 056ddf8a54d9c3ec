"""Dataclasses that cross the Temporal boundary (workflow inputs, activity inputs and results).

Only plain types: str, int, bool, dates and instants, lists, other contracts. Money is integer cents;
instants are timezone-aware UTC datetimes; calendar dates are `date`. Workflows import this module,
so it must stay free of I/O and heavy imports. Statuses are the StrEnums of `foundation.statuses`,
re-exported here: a field typed with one decodes its string to the member.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

# Re-exported (`X as X`): the statuses are part of the contracts.
from foundation.statuses import (
    ChargeResult as ChargeResult,
    CycleOutcome as CycleOutcome,
    DepositStatus as DepositStatus,
    InvoiceStatus as InvoiceStatus,
    NotCharged as NotCharged,
    PaymentResult as PaymentResult,
    PaymentStatus as PaymentStatus,
    RefundResultStatus as RefundResultStatus,
    RefundStatus as RefundStatus,
    SubscriptionStatus as SubscriptionStatus,
    WaitingFor as WaitingFor,
)


@dataclass(frozen=True)
class PlanTerms:
    """A snapshot of the plan the subscription bills, taken at enrollment or plan change."""

    plan_id: str
    price_cents: int
    enrollment_fee_cents: int
    interval_months: int
    term_months: int
    auto_renew: bool
    dunning_offsets_days: list[int]
    dunning_on_exhausted: str
    proration_policy: str
    cancellation_policy: str
    # Cycles a subscription bills while waiting for a new card (its card hard-declined or missing)
    # before it is suspended; a default so payloads from before it decode.
    card_wait_cycles: int = 2


@dataclass(frozen=True)
class SubscriptionSetup:
    """What the workflow needs to know that never changes for the life of the subscription."""

    subscription_id: str
    client_id: str
    location_id: str
    pet_id: str
    timezone: str
    start_date: date
    charge_at_minutes: int  # local time of day for charges, minutes after midnight


@dataclass
class OpenInvoice:
    """An invoice the workflow is still collecting (carried across continue-as-new)."""

    invoice_id: str
    cycle_index: int
    period_start: date
    due_at: datetime
    balance_cents: int
    attempts: int = 0
    waiting_for: WaitingFor = WaitingFor.RETRY
    next_attempt_at: datetime | None = None
    last_decline_reason: str | None = None
    last_decline_class: str | None = None
    kind: str = "subscription"  # subscription (a cycle's) | proration


@dataclass
class CycleRecord:
    """One line of the subscription's recent history, for queries (older lines live in the DB)."""

    cycle_index: int
    period_start: date
    invoice_id: str
    outcome: CycleOutcome
    detail: str = ""


@dataclass
class SubscriptionState:
    """Everything the workflow carries from one run to the next."""

    status: SubscriptionStatus = SubscriptionStatus.ACTIVE
    plan: PlanTerms | None = None
    card_id: str | None = None
    next_cycle: int = 0
    term_start_cycle: int = 0
    cancel_at_term_end: bool = False
    open_invoices: list[OpenInvoice] = field(default_factory=list)
    history: list[CycleRecord] = field(default_factory=list)
    skipped_cycles: int = 0


@dataclass(frozen=True)
class SubscriptionInput:
    setup: SubscriptionSetup
    state: SubscriptionState


@dataclass(frozen=True)
class ChargeRequest:
    """Invoice one cycle (idempotently) and try to collect it with attempt number `attempt`.

    `attempt` = 0 means: make sure the invoice exists and apply client credit, but do not charge.
    """

    subscription_id: str
    cycle_index: int
    period_start: date
    period_end: date
    due_at: datetime
    attempt: int
    card_id: str | None
    plan: PlanTerms
    first_cycle: bool
    next_due_at: datetime | None = None
    attempt_at: datetime | None = None  # workflow time of this attempt (card expiry is judged then)
    invoice_id: str | None = None  # a one-off invoice of the subscription (a proration) to collect, not the cycle's
    at: datetime | None = None  # workflow.now() at scheduling: the books' date (None in older histories: the database's now())


@dataclass(frozen=True)
class ChargeAsked:
    """Which charge a `ChargeOutcome` answers. The subscription charge runs as a local activity, and
    a local activity's history marker keeps its result but not its input: finance's audit trail
    reads what was asked from here."""

    cycle_index: int
    period_start: date
    period_end: date
    attempt: int
    card_id: str | None

    @classmethod
    def of(cls, request: ChargeRequest) -> ChargeAsked:
        return cls(request.cycle_index, request.period_start, request.period_end, request.attempt, request.card_id)


@dataclass(frozen=True)
class ChargeOutcome:
    """What one collection attempt ended in. A decline is a result, not an error."""

    invoice_id: str
    outcome: ChargeResult
    balance_cents: int
    charged_cents: int = 0
    decline_reason: str | None = None
    decline_class: str | None = None  # soft | hard
    not_charged_reason: NotCharged | None = None
    external_transaction_id: str | None = None
    asked: ChargeAsked | None = None  # set by the subscription charge; absent in older histories


@dataclass(frozen=True)
class StatusChange:
    """Mirror a workflow decision into the subscription row and the outbox, in one transaction."""

    subscription_id: str
    status: SubscriptionStatus
    event_type: str | None = None
    event_key: str | None = None
    detail: str = ""
    next_due_at: datetime | None = None
    cancel_at_term_end: bool | None = None  # set: the row's flag is written too (None in older histories)
    at: datetime | None = None  # workflow.now() at scheduling: the row's and event's date (None in older histories)


@dataclass(frozen=True)
class CancelRequest:
    """Cancel now (settling per plan policy) or at the end of the current term."""

    mode: str  # now | term_end
    reason: str = ""


@dataclass(frozen=True)
class CancelInput:
    subscription_id: str
    plan: PlanTerms
    card_id: str | None
    cancel_at: datetime
    period_start: date | None  # the current paid period, if any
    period_end: date | None
    open_invoice_ids: list[str]
    reason: str


@dataclass(frozen=True)
class CancelOutcome:
    settlement_kind: str  # charge | refund | none
    settlement_cents: int
    voided_invoice_ids: list[str]
    settlement_invoice_id: str | None = None
    refund_id: str | None = None


@dataclass(frozen=True)
class CardChange:
    subscription_id: str
    card_id: str
    at: datetime | None = None  # workflow.now() at scheduling: the event's date (None in older histories: the database's now())


@dataclass(frozen=True)
class CommandResult:
    """What an accepted Update returns to the caller."""

    accepted: bool
    status: str
    message: str = ""


@dataclass(frozen=True)
class SubscriptionView:
    """The answer to the `describe` query: status, period, next due, balance, attempts, history."""

    subscription_id: str
    status: SubscriptionStatus
    plan_id: str
    card_id: str | None
    next_cycle: int
    next_due_at: datetime | None
    current_period_start: date | None
    current_period_end: date | None
    balance_cents: int
    open_invoices: list[OpenInvoice]
    history: list[CycleRecord]
    cancel_at_term_end: bool


@dataclass(frozen=True)
class InvoiceChanged:
    """Signal to a subscription: one of its invoices was paid, partly paid or voided elsewhere."""

    invoice_id: str
    status: InvoiceStatus
    balance_cents: int


@dataclass(frozen=True)
class PlanChange:
    plan_id: str


@dataclass(frozen=True)
class PlanChangeInput:
    subscription_id: str
    old_plan: PlanTerms
    new_plan_id: str
    change_at: datetime
    period_start: date | None
    period_end: date | None
    card_id: str | None


@dataclass(frozen=True)
class PlanChangeOutcome:
    new_plan: PlanTerms
    net_cents: int  # > 0 charged to the client, < 0 credited, 0 nothing
    message: str
    invoice_id: str | None = None  # the proration invoice charged, if any (absent in older histories)
    collection: ChargeOutcome | None = None  # what its first attempt ended in


# ----------------------------------------------------------------- counter payments (terminal, deposits, refunds)
@dataclass(frozen=True)
class TerminalTiming:
    """How long a terminal payment waits, from Gravity's polling advice (seconds).

    Poll every 3-5 s for 3 minutes; then cancel at the device, tell the user and keep checking every
    30 s for 30 more minutes; what is still unknown then goes to manual review. Tests may pass
    coarser values to keep the number of timers (and time skips) small.
    """

    poll_every_s: int = 5
    counter_timeout_s: int = 180
    background_every_s: int = 30
    background_for_s: int = 1800


@dataclass(frozen=True)
class TerminalPaymentInput:
    """One payment (or deposit) pushed to one counter terminal; `payment_id` names the workflow."""

    payment_id: str
    attempt_key: str
    location_id: str
    device_name: str
    purpose: str = "invoice"  # invoice | deposit
    invoice_id: str | None = None
    client_id: str | None = None
    amount_cents: int | None = None  # None: the invoice's open balance
    save_card: bool = False
    make_default: bool = False
    timing: TerminalTiming = field(default_factory=TerminalTiming)
    at: datetime | None = None  # workflow.now() at scheduling: the books' date (None in older histories: the database's now())


@dataclass(frozen=True)
class TerminalPrepared:
    """The payment row written before anything is sent, or why nothing will be sent."""

    payment_id: str
    external_transaction_id: str = ""
    amount_cents: int = 0
    reference: str = ""
    subscription_id: str | None = None
    refused_reason: str | None = None


@dataclass(frozen=True)
class GatewayResult:
    """A terminal transaction's result (from a verified postback or a lookup): never a card number."""

    external_transaction_id: str
    outcome: str  # approved | partial | declined
    approved_cents: int
    unique_trans_id: str | None = None
    result_message: str = ""
    decline_reason: str | None = None
    decline_class: str | None = None
    masked_account: str | None = None
    card_brand: str | None = None
    expiry_mmyy: str | None = None
    fingerprint: str | None = None
    # Added later, so every one has a default: payloads written before still decode.
    amount_stated: bool = True  # False: an approval stated no amount; approved_cents 0 is not what it took
    tip_cents: int = 0  # taken above the request, included in approved_cents
    surcharge_cents: int = 0  # likewise
    avs_response_code: str | None = None
    avs_response_text: str | None = None
    cvv_response_code: str | None = None
    cvv_response_text: str | None = None
    cashier: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)  # TransactionResult.facts(): every reported field, JSON


@dataclass(frozen=True)
class TerminalRecord:
    """Book a terminal result; `late` = it arrived after we gave up at the counter (void it)."""

    payment_id: str
    result: GatewayResult
    save_card: bool = False
    make_default: bool = False
    late: bool = False
    at: datetime | None = None  # workflow.now() at scheduling: the books' date (None in older histories: the database's now())


@dataclass(frozen=True)
class TerminalOutcome:
    """What a terminal payment ended in (the workflow's result and the activities' answers)."""

    payment_id: str
    status: str  # a PaymentResult, or the payment row's PaymentStatus where none applies
    approved_cents: int = 0
    balance_cents: int = 0
    invoice_id: str | None = None
    invoice_status: InvoiceStatus | None = None
    subscription_id: str | None = None
    card_id: str | None = None
    deposit_id: str | None = None
    message: str = ""


@dataclass(frozen=True)
class TerminalClose:
    """End a payment that moved no money: cancelled, refused, or left for manual review."""

    payment_id: str
    status: PaymentResult  # CANCELLED, REFUSED or MANUAL_REVIEW
    message: str = ""
    at: datetime | None = None  # workflow.now() at scheduling: the books' date (None in older histories: the database's now())


@dataclass(frozen=True)
class TerminalView:
    """The `status` query of a terminal payment workflow."""

    payment_id: str
    state: str  # validating | sending | waiting_at_counter | timed_out_at_counter | recording | <final outcome>
    message: str = ""
    outcome: TerminalOutcome | None = None


@dataclass(frozen=True)
class InvoiceCancellationInput:
    invoice_id: str
    reason: str = ""


@dataclass(frozen=True)
class CompensationPlan:
    """What is still to give back before the invoice can be voided."""

    invoice_id: str
    payment_ids: list[str]
    credit_application_ids: list[int]
    subscription_id: str | None
    invoice_status: InvoiceStatus


@dataclass(frozen=True)
class CompensationStep:
    invoice_id: str
    payment_id: str | None = None
    credit_application_id: int | None = None
    reason: str = ""
    at: datetime | None = None  # workflow.now() at scheduling: the books' date (None in older histories: the database's now())


@dataclass(frozen=True)
class GiveBackOutcome:
    """One payment given back: by a void, by a refund, or nothing left to give."""

    payment_id: str
    kind: str  # void | refund | none
    amount_cents: int
    refund_id: str | None = None


@dataclass(frozen=True)
class InvoiceCancellationOutcome:
    invoice_id: str
    status: InvoiceStatus  # VOID
    compensated: list[GiveBackOutcome]
    credit_returned_cents: int
    subscription_id: str | None = None


# ----------------------------------------------------------------- the janitor and the reconciliation
@dataclass(frozen=True)
class JanitorInput:
    """Resolve money movements still pending after `older_than_s` seconds (at most `limit` a run).

    A counter-terminal sale is left to its own workflow far longer (`terminal_older_than_s`): that
    workflow keeps checking for half an hour and may still book a late answer itself."""

    older_than_s: int = 600
    limit: int = 500
    terminal_older_than_s: int = 3 * 3600


@dataclass(frozen=True)
class JanitorReport:
    booked: int = 0  # pending attempts Gravity knew: their answer is now booked
    closed: int = 0  # pending attempts Gravity never saw: closed as not sent
    refunds_done: int = 0
    refunds_failed: int = 0
    unresolved: int = 0  # the lookup itself failed: the next run tries again
    recognized: int = 0  # months of deferred revenue recognized (`books.recognition`)


@dataclass(frozen=True)
class ReconciliationInput:
    """Compare the books with the gateway for `day` on each location's calendar (None: each
    location's newest ended day, the one before its local date when the run starts: at 07:00 UTC
    that is the UTC date's yesterday in New York but the day before in Honolulu, still at 21:00)."""

    day: date | None = None


@dataclass(frozen=True)
class ReconciliationReport:
    day: date  # the newest local day reconciled
    checked: int
    differences: list[str] = field(default_factory=list)
    days: list[date] = field(default_factory=list)  # the oldest and newest local days reconciled


# ----------------------------------------------------------------- refunds and card deposits (front desk)
@dataclass(frozen=True)
class RefundRequest:
    """A refund asked for at the front desk: part or all of a card payment, or what is left of a deposit.

    `request_key` is the caller's idempotency key; the void's and the refund's attempt keys derive
    from it (with the payment or deposit), so every retry of the movement finds its own rows."""

    request_key: str
    payment_id: str | None = None
    deposit_id: str | None = None
    amount_cents: int | None = None  # None: everything still refundable (a deposit: its unused credit)
    reason: str = ""
    at: datetime | None = None  # workflow.now() at scheduling: the books' date (None in older histories: the database's now())


@dataclass(frozen=True)
class RefundResult:
    """How a refund movement ended: done (void or refund), refused (what it needed was taken after
    the request was checked), or failed (Gravity would not give the money back)."""

    status: RefundResultStatus
    payment_id: str | None = None
    kind: str = "none"  # void | refund | none
    amount_cents: int = 0
    refund_id: str | None = None
    message: str = ""


@dataclass(frozen=True)
class CardDepositRequest:
    """A deposit (client credit) charged to a saved card, once per `request_key`."""

    client_id: str
    card_id: str
    amount_cents: int
    request_key: str
    at: datetime | None = None  # workflow.now() at scheduling: the books' date (None in older histories: the database's now())


@dataclass(frozen=True)
class DepositOutcome:
    """How a card deposit ended; `refused` and `failed` moved no money."""

    payment_id: str
    status: str  # a PaymentResult, or the payment row's PaymentStatus where none applies
    approved_cents: int
    deposit_id: str | None = None
    message: str = ""


@dataclass(frozen=True)
class RenewalAsk:
    """At a term's end: which plan version the next term bills (the plan's newest, unless retired)."""

    subscription_id: str
    plan_id: str


@dataclass(frozen=True)
class RenewalTerms:
    """The terms the next term bills, pinned on the subscription row; `retired`: no next term."""

    plan: PlanTerms
    version: int
    retired: bool = False
