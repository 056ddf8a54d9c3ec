"""A workflow's runs read from Temporal: the continue-as-new chain walked back from the newest run."""

from __future__ import annotations

from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from operations.history.decoding import RunDecoder
from operations.history.entries import HistoryEntry, WorkflowRuns


async def workflow_entries(client: Client, workflow_id: str) -> tuple[WorkflowRuns, list[HistoryEntry]] | None:
    """Every run of `workflow_id` (None if it never existed), decoded into entries."""
    try:
        description = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    histories: list[tuple[str, list[HistoryEvent]]] = []
    run_id: str | None = description.run_id
    while run_id:
        events = [event async for event in client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history_events()]
        if not events:
            break
        histories.append((run_id, events))
        run_id = events[0].workflow_execution_started_event_attributes.continued_execution_run_id or None
    histories.reverse()
    if not histories:
        return None
    run_ids = [run for run, _ in histories]
    workflow_type = histories[0][1][0].workflow_execution_started_event_attributes.workflow_type.name
    decoder = RunDecoder(client, workflow_id, workflow_type)
    entries: list[HistoryEntry] = []
    for run, (_, events) in zip(run_ids, histories, strict=True):
        entries.extend(await decoder.decode_run(run, events))
    status = description.status.name.lower() if description.status else "unknown"
    return WorkflowRuns(workflow_id, workflow_type, run_ids, status), entries
