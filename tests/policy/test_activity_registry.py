"""One registry (`activities.registry`) feeds the worker and the audit trail: every activity a
workflow references is registered under its name on the wire and decoded typed by
`operations.history`, and every workflow class is registered and decoded typed."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

from sqlalchemy import create_engine
from temporalio import activity, workflow

from activities.registry import WORKFLOWS, bound_activities
from gravity.directory import GatewayDirectory
from operations.history import activity_types, payload_types

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW_MODULES = sorted(path.stem for path in (ROOT / "workflows").glob("*.py") if path.stem != "__init__")


def _name(method: object) -> str | None:
    definition = activity._Definition.from_callable(method) if callable(method) else None
    return definition.name if definition is not None else None


def referenced_activities() -> set[str]:
    """The wire names of the activity methods the workflow modules reference (`Class.method`)."""
    names: set[str] = set()
    for stem in WORKFLOW_MODULES:
        module = importlib.import_module(f"workflows.{stem}")
        for node in ast.walk(ast.parse((ROOT / "workflows" / f"{stem}.py").read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                owner = getattr(module, node.value.id, None)
                name = _name(getattr(owner, node.attr, None)) if isinstance(owner, type) else None
                if name is not None:
                    names.add(name)
    return names


def registered_activities() -> list[str | None]:
    """The names of what the worker registers (`worker.build_worker` passes `bound_activities`)."""
    engine = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")  # never connects
    return [_name(method) for method in bound_activities(engine, GatewayDirectory("http://127.0.0.1:1", {}))]


def test_every_referenced_activity_is_registered_once() -> None:
    referenced = referenced_activities()
    registered = registered_activities()
    assert "charge_cycle" in referenced and "mirror_status" in referenced  # the references are found
    assert referenced - set(registered) == set()
    assert len(registered) == len(set(registered)) and None not in registered


def test_every_workflow_class_is_registered() -> None:
    defined = {
        value
        for stem in WORKFLOW_MODULES
        for value in vars(importlib.import_module(f"workflows.{stem}")).values()
        if isinstance(value, type) and hasattr(value, "__temporal_workflow_definition")
    }
    assert defined == set(WORKFLOWS)


def test_every_referenced_activity_is_known_to_the_audit_trail() -> None:
    """Its argument decodes into the contract the workflow sent (not plain JSON), and its result
    into the declared type."""
    referenced = referenced_activities()
    assert {name for name in referenced if activity_types.ACTIVITIES.get(name, (None, None))[0] is None} == set()
    assert {name for name in referenced if activity_types.ACTIVITIES[name][1] is None} == set()


def test_every_workflow_is_known_to_the_audit_trail() -> None:
    names = {workflow._Definition.must_from_class(cls).name for cls in WORKFLOWS}
    assert {n for n in names if n is None or payload_types.WORKFLOW_INPUTS.get(n) is None or payload_types.WORKFLOW_RESULTS.get(n) is None} == set()
