"""Which contract each workflow, Update and signal payload is, so it decodes typed (unknown ones stay JSON)."""

from __future__ import annotations

from activities.registry import workflow_types
from foundation.contracts import (
    CancelRequest,
    CommandResult,
    GatewayResult,
    InvoiceChanged,
    PlanChange,
)

# Declared by each workflow's run method, in the registry the worker runs.
_WORKFLOWS = workflow_types()
WORKFLOW_INPUTS: dict[str, type | None] = {name: input_type for name, (input_type, _) in _WORKFLOWS.items()}
WORKFLOW_RESULTS: dict[str, type | None] = {name: result_type for name, (_, result_type) in _WORKFLOWS.items()}
UPDATES: dict[str, tuple[list[type], type]] = {
    "cancel": ([CancelRequest], CommandResult),
    "pause": ([], CommandResult),
    "resume": ([], CommandResult),
    "change_card": ([str], CommandResult),
    "change_plan": ([PlanChange], CommandResult),
    "pay_now": ([], CommandResult),
}
SIGNALS: dict[str, list[type]] = {"invoice_changed": [InvoiceChanged], "postback": [GatewayResult], "charging_enabled": []}
