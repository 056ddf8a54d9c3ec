"""Dataclasses that cross the Temporal boundary (workflow inputs, activity inputs and results).

Only plain types: str, int, bool, dates and instants, lists, other contracts. Money is integer cents;
instants are timezone-aware UTC datetimes; calendar dates are `date`. Workflows import this module,
so it must stay free of I/O and heavy imports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime


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
    waiting_for: str = "retry"  # retry | new_card | charging_enabled | payment
    next_attempt_at: datetime | None = None
    last_decline_reason: str | None = None
    last_decline_class: str | None = None


@dataclass
class CycleRecord:
    """One line of the subscription's recent history, for queries (older lines live in the DB)."""

    cycle_index: int
    period_start: date
    invoice_id: str
    outcome: str  # paid | declined | not_charged | void
    detail: str = ""


@dataclass
class SubscriptionState:
    """Everything the workflow carries from one run to the next."""

    status: str = "active"
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


@dataclass(frozen=True)
class ChargeOutcome:
    """What one collection attempt ended in. A decline is a result, not an error."""

    invoice_id: str
    outcome: str  # paid | declined | not_charged | partial
    balance_cents: int
    charged_cents: int = 0
    decline_reason: str | None = None
    decline_class: str | None = None  # soft | hard
    not_charged_reason: str | None = None  # charging_disabled | card_expired | no_card | invoice_closed
    external_transaction_id: str | None = None


@dataclass(frozen=True)
class StatusChange:
    """Mirror a workflow decision into the subscription row and the outbox, in one transaction."""

    subscription_id: str
    status: str
    event_type: str | None = None
    event_key: str | None = None
    detail: str = ""
    next_due_at: datetime | None = None


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
    status: str
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
    status: str  # open | paid | void
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
