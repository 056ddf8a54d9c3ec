"""Deterministic ids for everything that moves money.

An attempt's business key names what it is for (`charge:{subscription}:{period_start}:{attempt}`);
the UUID sent to Gravity as `externalTransactionId` (and as the idempotency key) is derived from
that key, so a retry, a replay or a restarted worker always produces the same id for the same attempt,
and the database's UNIQUE constraint on it refuses a second row.
"""

from __future__ import annotations

import uuid
from datetime import date

_NAMESPACE = uuid.UUID("6f1c1a52-3a1e-4c59-9a55-2f8f3c1f0b7e")


def external_id(attempt_key: str) -> str:
    """The Gravity externalTransactionId (a UUID) for a business attempt key."""
    return str(uuid.uuid5(_NAMESPACE, attempt_key))


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


def invoice_id_for_cycle(subscription_id: str, period_start: date) -> str:
    return "inv_" + external_id(cycle_key(subscription_id, period_start)).replace("-", "")[:24]


def subscription_workflow_id(subscription_id: str) -> str:
    return f"subscription:{subscription_id}"


def new_id(prefix: str) -> str:
    """A random id for rows created by people (clients, plans, counter invoices)."""
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


def attempt_payment_id(attempt_key: str) -> str:
    """The payment row id of an attempt whose row is written later (terminal and card deposits), so
    the caller can name the payment before the workflow writes it."""
    return "pay_" + external_id(attempt_key).replace("-", "")[:24]


def customer_refund_key(payment_id: str, request_id: str) -> str:
    """Business key of a refund the front desk asked for; the void and refund attempt keys derive from it."""
    return f"customer:{payment_id}:{request_id}"


def deposit_refund_key(deposit_id: str, request_id: str) -> str:
    """Business key of giving back what is left of a deposit."""
    return f"deposit-refund:{deposit_id}:{request_id}"


def card_deposit_key(client_id: str, request_id: str) -> str:
    """Attempt key of a deposit charged to a saved card."""
    return f"deposit:{client_id}:{request_id}"


def refund_request_id(business_key: str) -> str:
    """The public id of a refund movement (its workflow and the URL it is polled at), from its key."""
    return "rfq_" + external_id(f"refund-request:{business_key}").replace("-", "")[:24]
