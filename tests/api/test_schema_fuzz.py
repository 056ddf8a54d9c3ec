"""Schemathesis over the whole OpenAPI schema, against the API on the real database, Temporal dev
server and Gravity sandbox: every phase (schema examples, boundary coverage, random fuzzing, and
stateful sequences along the schema's links), every check, a bounded number of examples per
operation. Any 5xx, any answer the schema does not describe, any schema-valid request refused as
"validation" (see `schemathesis_hooks`), or any schema-invalid request accepted fails the test.

Schemathesis runs as its own process (its command line is its best-kept interface) while this test
awaits it, so the session's event loop keeps running the worker the money routes need.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from gravity.sandbox.server import ThreadedUvicorn
from tests.api.conftest import API_TOKEN

ROOT = Path(__file__).resolve().parents[2]
CONFIG = Path(__file__).with_name("schemathesis.toml")


def schemathesis_command(url: str, report: Path) -> list[str]:
    return [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(CONFIG),
        "--no-color",
        "run",
        f"{url}/openapi.json",
        "--header",
        f"Authorization: Bearer {API_TOKEN}",
        # Every check, but schemathesis's own positive_data_acceptance is replaced by the hook's check:
        # a business refusal (422 "refused") is an answer the schema describes.
        "--checks",
        "all",
        "--exclude-checks",
        "positive_data_acceptance",
        "--report",
        "json",
        "--report-json-path",
        str(report),
    ]


def counts(report: dict[str, Any]) -> dict[str, int]:
    """Test cases sent, server errors and other failures (schema mismatches), from the JSON report."""
    failures = report["failures"]
    server = sum(f["count"] for f in failures if f["code"] == "ST101")
    return {"examples": report["test_cases"]["generated"], "server_errors": server, "mismatches": sum(f["count"] for f in failures) - server}


async def running_workflows(env: WorkflowEnvironment) -> set[tuple[str, str]]:
    return {(execution.id, execution.run_id) async for execution in env.client.list_workflows('ExecutionStatus="Running"')}


async def terminate_new_workflows(env: WorkflowEnvironment, before: set[tuple[str, str]]) -> None:
    """The run enrolls, pays and refunds for real; the workflows it started must not outlive the test."""
    for workflow_id, run_id in await running_workflows(env) - before:
        with contextlib.suppress(RPCError):  # it finished meanwhile
            await env.client.get_workflow_handle(workflow_id, run_id=run_id).terminate("schema fuzz run is over")


@pytest.mark.timeout(480)  # generous: the run shares a small machine with the rest of the suite
async def test_schemathesis_finds_no_server_error_and_no_schema_mismatch(
    db: Engine, api_server: ThreadedUvicorn, temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.api.schemathesis_hooks", "PYTHONPATH": str(ROOT)}
    report_path = tmp_path / "report.json"
    before = await running_workflows(temporal_env)
    process = await asyncio.create_subprocess_exec(
        *schemathesis_command(api_server.url, report_path), cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout=420)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await terminate_new_workflows(temporal_env, before)
    text = output.decode(errors="replace")
    summary = text[text.rfind("SUMMARY") :]
    report = json.loads(report_path.read_text())
    found = counts(report)
    print(f"schemathesis: {found['examples']} test cases, {found['server_errors']} server errors, {found['mismatches']} schema mismatches")
    print(text)  # every failure with the curl line that reproduces it
    assert report["complete"] and not report["errors"], summary
    assert found["server_errors"] == 0 and found["mismatches"] == 0, summary
    assert process.returncode == 0, summary
    assert {phase: result["status"] for phase, result in report["phases"].items()} == {
        "examples": "success",  # the finance routes' parameters carry examples
        "coverage": "success",
        "fuzzing": "success",
        "stateful": "success",
    }, summary
