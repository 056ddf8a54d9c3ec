"""The policy modules stay pure and light: workflow code imports them inside Temporal's sandbox."""

from __future__ import annotations

import ast
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULES = ["calendar", "dunning", "proration", "spread"]
ALLOWED_TOP_LEVEL = {
    "__future__",
    "collections",
    "dataclasses",
    "datetime",
    "functools",
    "hashlib",
    "typing",
    "pendulum",
    "workflows",
}


@pytest.mark.parametrize("name", MODULES)
def test_imports_only_stdlib_and_pendulum(name: str) -> None:
    tree = ast.parse((ROOT / "workflows" / f"{name}.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported <= ALLOWED_TOP_LEVEL, imported - ALLOWED_TOP_LEVEL


@pytest.mark.parametrize("name", MODULES)
def test_never_reads_the_clock(name: str) -> None:
    tree = ast.parse((ROOT / "workflows" / f"{name}.py").read_text())
    calls = {node.func.attr for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)}
    assert not calls & {"now", "today", "utcnow", "time", "monotonic", "random", "urandom"}


def test_importing_them_pulls_in_nothing_heavy() -> None:
    code = (
        "import sys, workflows.calendar, workflows.dunning, workflows.proration, workflows.spread\n"
        "heavy = [m for m in ('sqlmodel', 'sqlalchemy', 'psycopg', 'httpx', 'temporalio', 'fastapi') if m in sys.modules]\n"
        "print(heavy)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert run.stdout.strip() == "[]"


def test_policy_dataclasses_cross_the_temporal_boundary() -> None:
    """Round-trip through the engine's pydantic data converter (the default JSON one cannot encode `date`)."""
    from foundation.converter import data_converter
    from workflows.dunning import DEFAULT_SCHEDULE, DunningSchedule, DunningStep, next_step
    from workflows.proration import ProrationResult, Settlement, prorate_change

    due = datetime(2026, 1, 10, 14, tzinfo=UTC)
    values = [
        DEFAULT_SCHEDULE,
        next_step(DEFAULT_SCHEDULE, due_at=due, attempts_made=1, last_decline_class="soft", tz="America/New_York"),
        prorate_change(3100, 6200, period_start=date(2026, 1, 1), period_end=date(2026, 2, 1), change_date=date(2026, 1, 17), policy="prorate"),
        Settlement("refund", 1100, "x"),
    ]
    types = [DunningSchedule, DunningStep, ProrationResult, Settlement]
    converter = data_converter.payload_converter
    back = converter.from_payloads(converter.to_payloads(values), types)
    assert back == values
