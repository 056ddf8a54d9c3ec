"""The audit trail of one subject: the entry point, and what it returns."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from temporalio.client import Client

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

    def to_json(self) -> dict[str, Any]:
        return trail_json(self.subject, self.subject_id, self.workflows, self.entries)

    def to_csv(self) -> str:
        return trail_csv(self.entries)


async def audit_trail(client: Client, engine: Engine, subject: str, subject_id: str) -> AuditTrail:
    """Everything recorded about one subscription, invoice or client, oldest first."""
    if subject not in SUBJECTS:
        raise ValueError(f"subject must be one of {', '.join(SUBJECTS)}, not {subject!r}")
    scope = await asyncio.to_thread(find_scope, engine, subject, subject_id)
    books = await asyncio.to_thread(database_entries, engine, scope)
    workflows: list[WorkflowRuns] = []
    temporal_entries: list[HistoryEntry] = []
    gate = asyncio.Semaphore(FETCH_CONCURRENCY)

    async def fetch(workflow_id: str) -> tuple[WorkflowRuns, list[HistoryEntry]] | None:
        async with gate:
            return await workflow_entries(client, workflow_id)

    for found in await asyncio.gather(*(fetch(w) for w in scope.workflow_ids)):
        if found is None:
            continue
        runs, entries = found
        workflow_id = runs.workflow_id
        if subject == "invoice" and workflow_id.startswith("subscription:"):
            entries = [e for e in entries if e.invoice_id == subject_id]
        workflows.append(runs)
        temporal_entries.extend(entries)
    return AuditTrail(subject, subject_id, interleave(temporal_entries, books), workflows)
