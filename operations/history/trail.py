"""The audit trail of one subject: the entry point, and what it returns."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.service import RPCError

from operations.history.books import database_entries
from operations.history.entries import HistoryEntry, WorkflowRuns
from operations.history.export import trail_csv, trail_json
from operations.history.scope import SUBJECTS, find_scope
from operations.history.timeline import interleave
from operations.history.workflow_runs import workflow_entries

FETCH_CONCURRENCY = 8  # workflows whose histories are read at once


@dataclass
class AuditTrail:
    subject: str
    subject_id: str
    entries: list[HistoryEntry]
    workflows: list[WorkflowRuns] = field(default_factory=list)
    workflow_history_complete: bool = True  # False: Temporal did not answer in time, the books alone

    def to_json(self) -> dict[str, Any]:
        return {**trail_json(self.subject, self.subject_id, self.workflows, self.entries), "workflow_history_complete": self.workflow_history_complete}

    def to_csv(self) -> str:
        return trail_csv(self.entries)


async def audit_trail(
    client: Client,
    engine: Engine,
    subject: str,
    subject_id: str,
    *,
    reach: frozenset[str] | None = None,
    temporal_timeout_s: float | None = None,
) -> AuditTrail:
    """Everything recorded about one subscription, invoice or client, oldest first.

    `reach` (None: every location) hides subjects of other locations as unknown. With
    `temporal_timeout_s`, workflow histories not read by then (or when Temporal refuses) are left
    out and the trail says so, so a slow or unreachable Temporal cannot hold up the books."""
    if subject not in SUBJECTS:
        raise ValueError(f"subject must be one of {', '.join(SUBJECTS)}, not {subject!r}")
    scope = await asyncio.to_thread(find_scope, engine, subject, subject_id, reach=reach)
    books = await asyncio.to_thread(database_entries, engine, scope)
    workflows: list[WorkflowRuns] = []
    temporal_entries: list[HistoryEntry] = []
    gate = asyncio.Semaphore(FETCH_CONCURRENCY)

    async def fetch(workflow_id: str) -> tuple[WorkflowRuns, list[HistoryEntry]] | None:
        async with gate:
            return await workflow_entries(client, workflow_id)

    fetches = asyncio.gather(*(fetch(w) for w in scope.workflow_ids))
    try:
        found_all = await asyncio.wait_for(fetches, temporal_timeout_s)
    except (TimeoutError, RPCError):
        return AuditTrail(subject, subject_id, interleave([], books), [], workflow_history_complete=False)
    for found in found_all:
        if found is None:
            continue
        runs, entries = found
        workflow_id = runs.workflow_id
        if subject == "invoice" and workflow_id.startswith("subscription:"):
            entries = [e for e in entries if e.invoice_id == subject_id]
        workflows.append(runs)
        temporal_entries.extend(entries)
    return AuditTrail(subject, subject_id, interleave(temporal_entries, books), workflows)
