"""The workflow modules are passed through Temporal's sandbox (see `worker.WORKFLOW_RUNNER`), so the
sandbox no longer re-imports them per run; these checks stand in for that isolation: no clock,
randomness, I/O or mutable module state but through `workflow`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW_MODULES = ["subscription", "terminal_payment", "invoice_cancellation", "refund", "card_deposit"]
FORBIDDEN_CALLS = {"now", "today", "utcnow", "time", "monotonic", "perf_counter", "random", "randint", "choice", "uuid4", "urandom", "open"}
FORBIDDEN_IMPORTS = {"random", "time", "uuid", "os", "socket", "threading", "subprocess", "httpx", "psycopg", "sqlalchemy", "sqlmodel"}
IMMUTABLE_CALLS = {"RetryPolicy", "frozenset", "timedelta", "tuple"}


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
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            value = node.value
            mutable = isinstance(value, (ast.List, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp))
            call = value.func.id if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) else None
            assert not mutable and (not isinstance(value, ast.Call) or call in IMMUTABLE_CALLS), ast.dump(node)[:200]
        assert not isinstance(node, ast.Global)
