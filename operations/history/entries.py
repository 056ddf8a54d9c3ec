"""The records the trail is made of: one entry per fact, and the runs each workflow was read from."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

TEMPORAL = "temporal"
DATABASE = "database"


@dataclass
class HistoryEntry:
    """One line of the audit trail; `source` says whose record it is (temporal or database)."""

    at: datetime
    source: str
    kind: str
    summary: str
    trigger: str = ""
    workflow_id: str | None = None
    run_id: str | None = None
    event_id: int | None = None
    invoice_id: str | None = None
    payment_id: str | None = None
    attempt: int | None = None
    amount_cents: int | None = None
    status: str | None = None
    reason: str | None = None
    external_transaction_id: str | None = None
    reference: str | None = None
    payload: Any = None

    def row(self) -> dict[str, Any]:
        """The flat CSV row (the payload is left to the JSON export)."""
        data = asdict(self)
        data.pop("payload")
        data["at"] = self.at.isoformat()
        return data


@dataclass
class WorkflowRuns:
    workflow_id: str
    workflow_type: str
    run_ids: list[str]  # oldest first
    status: str


def approved_charges(entries: Iterable[HistoryEntry]) -> list[HistoryEntry]:
    """The workflow's approved charge results (what an auditor checks against payments and ledger)."""
    return [e for e in entries if e.source == TEMPORAL and e.kind == "charge_result" and (e.amount_cents or 0) > 0]
