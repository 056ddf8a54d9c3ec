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
