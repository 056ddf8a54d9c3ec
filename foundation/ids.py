"""Deterministic ids and keys: every idempotency key, row id, workflow id, ledger reference and
outbox key the engine derives, in one place.

An attempt's business key names what it is for (`charge:{subscription}:{period_start}:{attempt}`);
the UUID sent to Gravity as `externalTransactionId` (and as the idempotency key) is derived from
that key, so a retry, a replay or a restarted worker always produces the same id for the same attempt,
and the database's UNIQUE constraint on it refuses a second row. Every format here is on the wire or
in a UNIQUE column: `tests/policy/test_ids.py` pins each one, and none may change.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from foundation import scopes as _scopes

_NAMESPACE = uuid.UUID("6f1c1a52-3a1e-4c59-9a55-2f8f3c1f0b7e")


def external_id(attempt_key: str) -> str:
    """The Gravity externalTransactionId (a UUID) for a business attempt key."""
    return str(uuid.uuid5(_NAMESPACE, attempt_key))


def _hex(uuid_text: str, length: int = 24) -> str:
    """The first `length` hex digits of a UUID: the tail of the row ids derived from one."""
    return uuid_text.replace("-", "")[:length]


def new_id(prefix: str) -> str:
    """A random id for rows created by people (clients, plans, counter invoices)."""
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


# ----------------------------------------------------------------- attempt and business keys
def movement_key(actor: _scopes.Actor | None, key: str) -> str:
    """The key a money movement's ids are built from: each API token's own, so two tokens sending the
    same key make two requests and never join (or learn of) each other's movement. BILLING_API_TOKEN's,
    the CLI's and an unnamed caller's (the demo, the bench) is the key as sent, as before tokens
    existed, so a retry across an upgrade joins its movement."""
    if actor is None or actor.token == _scopes.SETTINGS_TOKEN_NAME or actor.token.startswith(_scopes.CLI_ACTOR_PREFIX):
        return key
    return f"{actor.token}:{key}"


def charge_key(subscription_id: str, period_start: date, attempt: int) -> str:
    """Key of the `attempt`-th charge of one subscription cycle (attempts count from 1)."""
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    return f"charge:{subscription_id}:{period_start.isoformat()}:{attempt}"


def invoice_retry_key(invoice_id: str, attempt: int) -> str:
    """Key of retry `attempt` (2 and up) of a subscription's one-off invoice (a proration): its first
    attempt has a key of its own, made by the command that issued the invoice."""
    if attempt < 2:
        raise ValueError(f"a retry's attempt must be >= 2, got {attempt}")
    return f"invoice:{invoice_id}:{attempt}"


def cycle_key(subscription_id: str, period_start: date) -> str:
    """Unique key of one subscription cycle's invoice."""
    return f"cycle:{subscription_id}:{period_start.isoformat()}"


def settlement_invoice_key(subscription_id: str) -> str:
    """Key of the one settlement invoice an early cancellation may issue."""
    return f"settlement:{subscription_id}"


def settlement_charge_key(subscription_id: str) -> str:
    """Attempt key of the one charge of a cancellation's settlement invoice."""
    return f"{settlement_invoice_key(subscription_id)}:1"


def proration_invoice_key(subscription_id: str, change_at: datetime) -> str:
    """Key of the proration invoice a plan change at `change_at` may issue."""
    return f"proration:{subscription_id}:{change_at.isoformat()}"


def proration_charge_key(subscription_id: str, change_at: datetime) -> str:
    """Attempt key of the first charge of a plan change's proration invoice."""
    return f"{proration_invoice_key(subscription_id, change_at)}:1"


def settlement_refund_prefix(subscription_id: str) -> str:
    """What every settlement refund key of a subscription starts with (the first one is exactly it)."""
    return f"settlement-refund:{subscription_id}"


def settlement_refund_key(subscription_id: str, index: int, payment_id: str) -> str:
    """Attempt key of the settlement refund of the `index`-th payment: the first keeps the key a
    single-payment settlement always had (a retry across a deploy finds its row), the rest name theirs."""
    prefix = settlement_refund_prefix(subscription_id)
    return prefix if index == 0 else f"{prefix}:{payment_id}"


def customer_refund_key(payment_id: str, request_id: str) -> str:
    """Business key of a refund the front desk asked for; the void and refund attempt keys derive from it."""
    return f"customer:{payment_id}:{request_id}"


def deposit_refund_key(deposit_id: str, request_id: str) -> str:
    """Business key of giving back what is left of a deposit."""
    return f"deposit-refund:{deposit_id}:{request_id}"


def invoice_cancellation_key(invoice_id: str, payment_id: str) -> str:
    """Business key of giving one payment back because its invoice is cancelled."""
    return f"cancel:{invoice_id}:{payment_id}"


def late_approval_key(payment_id: str) -> str:
    """Business key of giving back a terminal approval that came after the counter gave up."""
    return f"late:{payment_id}"


def excess_key(payment_id: str) -> str:
    """Business key of giving back what an approval brought that no invoice needed."""
    return f"excess:{payment_id}"


def void_attempt_key(give_back_key: str) -> str:
    """Attempt key of the void tried first for a give-back's business key."""
    return f"void:{give_back_key}"


def refund_attempt_key(give_back_key: str) -> str:
    """Attempt key of the refund sent for a give-back's business key when no void is possible."""
    return f"refund:{give_back_key}"


def card_deposit_key(client_id: str, request_id: str) -> str:
    """Attempt key of a deposit charged to a saved card."""
    return f"deposit:{client_id}:{request_id}"


def terminal_attempt_key(request_id: str) -> str:
    """Attempt key of a counter-terminal payment (or deposit) request."""
    return f"terminal:{request_id}"


def enrollment_key(client_id: str, pet_id: str, plan_id: str, start_date: date) -> str:
    """Business key of one enrollment, so a retried enrollment names the same subscription."""
    return f"enroll:{client_id}:{pet_id}:{plan_id}:{start_date.isoformat()}"


# ----------------------------------------------------------------- row ids and numbers
def subscription_id_for(enrollment: str) -> str:
    """The subscription id an enrollment key derives (when the caller names none)."""
    return "sub_" + _hex(external_id(enrollment), 20)


def invoice_id_for(key: str) -> str:
    """The id of the invoice a business key (a cycle's, a settlement's, a proration's) issues."""
    return "inv_" + _hex(external_id(key))


def invoice_id_for_cycle(subscription_id: str, period_start: date) -> str:
    """The id of one subscription cycle's invoice."""
    return invoice_id_for(cycle_key(subscription_id, period_start))


def cycle_invoice_number(subscription_id: str, cycle_index: int) -> str:
    """The human-readable (UNIQUE) number of a subscription cycle's invoice, cycles counted from 1."""
    return f"S-{subscription_id}-{cycle_index + 1:03d}"


def one_off_invoice_number(kind: str, invoice_id: str) -> str:
    """The human-readable (UNIQUE) number of a one-off invoice: its kind's initial and its id."""
    return f"{kind[0].upper()}-{invoice_id.removeprefix('inv_')[:12]}"


def payment_id_for(external_transaction_id: str) -> str:
    """The payment row id of an attempt, from its externalTransactionId."""
    return "pay_" + _hex(external_transaction_id)


def attempt_payment_id(attempt_key: str) -> str:
    """The payment row id of an attempt whose row is written later (terminal and card deposits), so
    the caller can name the payment before the workflow writes it."""
    return payment_id_for(external_id(attempt_key))


def refund_id_for(external_transaction_id: str) -> str:
    """The refund row id of a void or refund attempt, from its externalTransactionId."""
    return "ref_" + _hex(external_transaction_id)


def deposit_id_for_payment(external_transaction_id: str) -> str:
    """The id of the client credit an approved deposit payment creates."""
    return "dep_" + _hex(external_transaction_id)


def overpayment_deposit_id(external_transaction_id: str) -> str:
    """The id of the client credit holding what an approval brought that no invoice needed."""
    return "dep_over_" + _hex(external_transaction_id, 20)


def settlement_credit_deposit_id(subscription_id: str) -> str:
    """The id of the client credit an early cancellation gives back (unused days paid with credit)."""
    return "dep_" + _hex(external_id(f"settlement_credit:{subscription_id}"))


def proration_credit_deposit_id(subscription_id: str, change_at: datetime) -> str:
    """The id of the client credit a downgrade at `change_at` gives."""
    return "dep_" + _hex(external_id(f"proration_credit:{subscription_id}:{change_at.isoformat()}"))


def saved_card_id_for(external_transaction_id: str) -> str:
    """The id of a card saved from the terminal sale with this externalTransactionId."""
    return "card_" + _hex(external_transaction_id)


def sale_fingerprint(unique_trans_id: str) -> str:
    """A saved card's fingerprint when Gravity reports none: the sale that saved it."""
    return f"trans:{unique_trans_id}"


def deposit_reference(payment_id: str) -> str:
    """The reference sent to Gravity with a deposit's sale (an invoice's sale sends the invoice id)."""
    return f"deposit:{payment_id}"


def refund_request_id(business_key: str) -> str:
    """The public id of a refund movement (its workflow and the URL it is polled at), from its key."""
    return "rfq_" + _hex(external_id(f"refund-request:{business_key}"))


# ----------------------------------------------------------------- workflow ids
def subscription_workflow_id(subscription_id: str) -> str:
    """The id of a subscription's one workflow."""
    return f"subscription:{subscription_id}"


def terminal_workflow_id(payment_id: str) -> str:
    """The id of a counter-terminal payment's workflow."""
    return f"terminal-payment:{payment_id}"


def cancellation_workflow_id(invoice_id: str) -> str:
    """The id of an invoice's cancellation saga (one per invoice)."""
    return f"invoice-cancellation:{invoice_id}"


def refund_workflow_id(refund_request_id: str) -> str:
    """The id of a refund movement's workflow, from its public id (`refund_request_id`)."""
    return f"refund:{refund_request_id}"


def card_deposit_workflow_id(payment_id: str) -> str:
    """The id of a card deposit's workflow, from the payment it makes."""
    return f"card-deposit:{payment_id}"


def charging_enabled_workflow_id(location_id: str, token: str) -> str:
    """One broadcast per location and change (`token` names the change, e.g. its time)."""
    return f"charging-enabled:{location_id}:{token}"


# ----------------------------------------------------------------- ledger references (UNIQUE)
def invoice_issued_reference(invoice_id: str) -> str:
    """Ledger reference of an invoice's issue posting."""
    return f"invoice:{invoice_id}:issued"


def invoice_void_reference(invoice_id: str) -> str:
    """Ledger reference of an invoice's void (or unpaid write-off) posting."""
    return f"invoice:{invoice_id}:void"


def invoice_refunds_reclassified_reference(invoice_id: str) -> str:
    """Ledger reference of moving a voided invoice's refunded payments off the refunds expense."""
    return f"invoice:{invoice_id}:refunds_reclassified"


def credit_applied_reference(application_id: int) -> str:
    """Ledger reference of applying client credit to an invoice."""
    return f"credit_application:{application_id}"


def credit_returned_reference(application_id: int) -> str:
    """Ledger reference of giving an applied credit back to its deposit."""
    return f"credit_application:{application_id}:returned"


def payment_approved_reference(external_transaction_id: str) -> str:
    """Ledger reference of an approved sale."""
    return f"payment:{external_transaction_id}:approved"


def refund_done_reference(external_transaction_id: str) -> str:
    """Ledger reference of a completed void or refund."""
    return f"refund:{external_transaction_id}:done"


def refund_unapplied_reference(external_transaction_id: str) -> str:
    """Ledger reference of taking a completed give-back off its invoice's paid amount."""
    return f"refund:{external_transaction_id}:unapplied"


def settlement_credit_reference(deposit_id: str) -> str:
    """Ledger reference of the client credit an early cancellation gives."""
    return f"settlement_credit:{deposit_id}"


def proration_credit_reference(deposit_id: str) -> str:
    """Ledger reference of the client credit a downgrade gives."""
    return f"proration_credit:{deposit_id}"


def unearned_given_back_reference(source_reference: str) -> str:
    """Ledger reference of the deferred part of a give-back (refund or credit) posted under `source_reference`."""
    return f"unearned_given_back:{source_reference}"


def unearned_restored_reference(given_back_reference: str) -> str:
    """Ledger reference of reversing a deferred give-back when its invoice is voided or the money unapplied."""
    return f"restored:{given_back_reference}"


def revenue_recognized_reference(invoice_id: str, month: int) -> str:
    """Ledger reference of recognizing month `month` (from 1) of an invoice's deferred revenue."""
    if month < 1:
        raise ValueError(f"month must be >= 1, got {month}")
    return f"revenue_recognized:{invoice_id}:{month}"


# ----------------------------------------------------------------- outbox streams and event keys
RECONCILIATION_STREAM = "finance:reconciliation"


def subscription_stream(subscription_id: str) -> str:
    """The outbox stream of a subscription's events."""
    return f"subscription:{subscription_id}"


def client_stream(client_id: str) -> str:
    """The outbox stream of a client's events that belong to no subscription."""
    return f"client:{client_id}"


def event_stream(subscription_id: str | None, client_id: str) -> str:
    """The stream of an event about a payment or invoice: its subscription's, else its client's."""
    return subscription_stream(subscription_id) if subscription_id else client_stream(client_id)


def event_id_for(dedupe_key: str) -> str:
    """The outbox event id (UNIQUE) of an event emitted with `dedupe_key`."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"event:{dedupe_key}"))


def subscription_event_key(event_type: str, subscription_id: str, cycle: int, suffix: str) -> str:
    """Dedupe key of a status decision of a subscription's workflow (`suffix` tells apart several
    events of one type in one cycle: an attempt, an Update's id)."""
    return f"{event_type}:{subscription_id}:{cycle}:{suffix}"


def invoice_issued_event_key(invoice_id: str) -> str:
    """Dedupe key of an `invoice.issued` event."""
    return f"invoice.issued:{invoice_id}"


def invoice_voided_event_key(invoice_id: str) -> str:
    """Dedupe key of an `invoice.voided` event."""
    return f"invoice.voided:{invoice_id}"


def payment_succeeded_event_key(payment_id: str) -> str:
    """Dedupe key of a `payment.succeeded` event."""
    return f"payment.succeeded:{payment_id}"


def payment_failed_event_key(payment_id: str) -> str:
    """Dedupe key of a `payment.failed` event."""
    return f"payment.failed:{payment_id}"


def payment_overpaid_event_key(payment_id: str) -> str:
    """Dedupe key of a `payment.overpaid` event."""
    return f"payment.overpaid:{payment_id}"


def payment_late_reversed_event_key(payment_id: str) -> str:
    """Dedupe key of a `payment.late_approval_reversed` event (its key was always the shorter name)."""
    return f"payment.late_reversed:{payment_id}"


def payment_manual_review_event_key(payment_id: str) -> str:
    """Dedupe key of a `payment.manual_review` event."""
    return f"payment.manual_review:{payment_id}"


def payment_closed_unsent_event_key(payment_id: str) -> str:
    """Dedupe key of a `payment.closed_unsent` event."""
    return f"payment.closed_unsent:{payment_id}"


def payment_excess_returned_event_key(payment_id: str) -> str:
    """Dedupe key of a `payment.excess_returned` event."""
    return f"payment.excess_returned:{payment_id}"


def payment_decline_unclassified_event_key(payment_id: str) -> str:
    """Dedupe key of a `payment.decline_unclassified` event."""
    return f"payment.decline_unclassified:{payment_id}"


def deposit_received_event_key(deposit_id: str) -> str:
    """Dedupe key of a `deposit.received` event."""
    return f"deposit.received:{deposit_id}"


def refund_done_event_key(refund_id: str) -> str:
    """Dedupe key of a `refund.done` event."""
    return f"refund.done:{refund_id}"


def card_saved_event_key(payment_id: str) -> str:
    """Dedupe key of a `card.saved` event, from the sale that saved the card."""
    return f"card.saved:{payment_id}"


def card_disabled_event_key(card_id: str, payment_id: str) -> str:
    """Dedupe key of a `card.disabled` event, from the decline that disabled the card."""
    return f"card.disabled:{card_id}:{payment_id}"


def card_expiring_event_key(subscription_id: str, card_id: str, cycle_index: int) -> str:
    """Dedupe key of a `card.expiring` event (once per cycle)."""
    return f"card.expiring:{subscription_id}:{card_id}:{cycle_index}"


def card_changed_event_key(subscription_id: str, card_id: str, run_id: str) -> str:
    """Dedupe key of a `subscription.card_changed` event (once per workflow run and card)."""
    return f"card_changed:{subscription_id}:{card_id}:{run_id}"


def plan_changed_event_key(subscription_id: str, plan_id: str, change_at: datetime) -> str:
    """Dedupe key of a `subscription.plan_changed` event."""
    return f"plan_changed:{subscription_id}:{plan_id}:{change_at.isoformat()}"


def settlement_failed_event_key(subscription_id: str) -> str:
    """Dedupe key of a `subscription.settlement_failed` event."""
    return f"subscription.settlement_failed:{subscription_id}"


def subscription_cancelled_event_key(subscription_id: str) -> str:
    """Dedupe key of the `subscription.cancelled` event of a cancellation now."""
    return f"subscription.cancelled:{subscription_id}"


def service_redeemed_event_key(redemption_id: str) -> str:
    """Dedupe key of a `service.redeemed` event."""
    return f"service.redeemed:{redemption_id}"


def reconciliation_difference_event_key(day: date, index: int, difference: str) -> str:
    """Dedupe key of one `reconciliation.difference` event of a day's reconciliation."""
    return f"reconciliation.difference:{day.isoformat()}:{index}:{difference}"


def reconciliation_completed_event_key(day: date, checked: int, differences: int) -> str:
    """Dedupe key of a day's `reconciliation.completed` event."""
    return f"reconciliation.completed:{day.isoformat()}:{checked}:{differences}"


def plan_stream(plan_id: str) -> str:
    """The outbox stream of a plan's events (a new version, its retirement)."""
    return f"plan:{plan_id}"
