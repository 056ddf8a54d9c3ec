"""The workflow modules are passed through Temporal's sandbox (see `worker.WORKFLOW_RUNNER`), so the
sandbox no longer re-imports them per run; these checks stand in for that isolation: no clock,
randomness, I/O or mutable module state but through `workflow`.

Workflows name their activities by reference, so they import the activity classes; those classes do
the database and Gravity work, so a workflow may only pass their methods to Temporal, never call
them or build one, and imports them passed through the sandbox."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Every module of the package: all of it is passed through, so a new module is checked the day it lands.
WORKFLOW_MODULES = sorted(path.stem for path in (ROOT / "workflows").glob("*.py") if path.stem != "__init__")
FORBIDDEN_CALLS = {"now", "today", "utcnow", "time", "monotonic", "perf_counter", "random", "randint", "choice", "uuid4", "urandom", "open"}
FORBIDDEN_IMPORTS = {"random", "time", "uuid", "os", "socket", "threading", "subprocess", "httpx", "psycopg", "sqlalchemy", "sqlmodel"}
IMMUTABLE_CALLS = {"RetryPolicy", "frozenset", "timedelta", "tuple", "DunningSchedule"}  # DunningSchedule: frozen


def _tree(name: str) -> ast.Module:
    return ast.parse((ROOT / "workflows" / f"{name}.py").read_text())


@pytest.mark.parametrize("name", WORKFLOW_MODULES)
def test_reads_time_only_through_workflow(name: str) -> None:
    bad = []
    for node in ast.walk(_tree(name)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
        owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else None
        if called == "time" and not isinstance(func, ast.Attribute):
            continue  # `datetime.time(...)`, a value; the `time` module cannot be imported (below)
        if called in FORBIDDEN_CALLS and owner != "workflow":
            bad.append(f"line {node.lineno}: {owner + '.' if owner else ''}{called}()")
    assert bad == []


@pytest.mark.parametrize("name", WORKFLOW_MODULES)
def test_imports_nothing_that_does_io(name: str) -> None:
    imported = set()
    for node in ast.walk(_tree(name)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported & FORBIDDEN_IMPORTS == set()


@pytest.mark.parametrize("name", WORKFLOW_MODULES)
def test_module_state_is_constant(name: str) -> None:
    """Module-level values are literals, tuples or frozen policies: nothing a run could change for
    the next one (the module is shared by every run in the worker)."""
    for node in _tree(name).body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["__all__"]:
            continue  # the export list, read only by `import *`
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            value = node.value
            mutable = isinstance(value, (ast.List, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp))
            call = value.func.id if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) else None
            assert not mutable and (not isinstance(value, ast.Call) or call in IMMUTABLE_CALLS), ast.dump(node)[:200]
        assert not isinstance(node, ast.Global)


def _passed_through(node: ast.With) -> bool:
    return any(
        isinstance(item.context_expr, ast.Call)
        and isinstance(item.context_expr.func, ast.Attribute)
        and item.context_expr.func.attr == "imports_passed_through"
        for item in node.items
    )


def _activity_imports(tree: ast.Module) -> dict[str, tuple[str, bool]]:
    """Each name imported from `activities`: (its module, whether imported passed through)."""
    found: dict[str, tuple[str, bool]] = {}
    passed = {id(inner) for node in ast.walk(tree) if isinstance(node, ast.With) and _passed_through(node) for inner in ast.walk(node)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert not any(alias.name.split(".")[0] == "activities" for alias in node.names), "import the activity classes by name"
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "activities":
            found |= {alias.asname or alias.name: (node.module, id(node) in passed) for alias in node.names}
    return found


@pytest.mark.parametrize("name", WORKFLOW_MODULES)
def test_activities_are_only_referenced(name: str) -> None:
    """An activity class appears only as `Class.method` of an `@activity.defn` method that is not
    called here (it goes to `workflow.execute_activity_method`), imported passed through the
    sandbox (a replay's full sandbox must not re-import SQLAlchemy for every run)."""
    tree = _tree(name)
    imports = _activity_imports(tree)
    assert [n for n, (_, passed) in imports.items() if not passed] == []
    called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    referenced = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in imports and id(node) not in referenced:
            bad.append(f"line {node.lineno}: {node.id} used other than as Class.method")
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in imports:
            cls = getattr(importlib.import_module(imports[node.value.id][0]), node.value.id)
            if not hasattr(getattr(cls, node.attr, None), "__temporal_activity_definition"):
                bad.append(f"line {node.lineno}: {node.value.id}.{node.attr} is not an activity")
            if id(node) in called:
                bad.append(f"line {node.lineno}: {node.value.id}.{node.attr}() called in the workflow")
    assert bad == []
