"""Walks the README's "Try it by hand" section from a new clinic to a tap at the terminal, command by
command as written there: the curl requests against the API (dev token), the `billing` commands
through the CLI. The session's sandbox names its devices counter-1/2, so front-desk-1 is read as counter-1."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlmodel import Session
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from foundation.settings import DEV_API_TOKEN, SANDBOX_OID, SANDBOX_TOKEN, Settings
from gravity.directory import GatewayDirectory
from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer, ThreadedUvicorn
from models.billing import Payment
from tests.cli.conftest import Billing, Run
from tests.conftest import TASK_QUEUE

README = Path(__file__).resolve().parents[2] / "README.md"
CURL = re.compile(r"""\$API(\S+) -d (?:'(?P<body>.*)'|@(?P<file>\S+))""")


def walk() -> list[str]:
    """The lines of the README's walk, comments dropped."""
    text = README.read_text()
    start = text.index("**From a new clinic to a tap at the terminal**")
    block = text[text.index("```bash", start) + len("```bash") : text.index("```", text.index("```bash", start) + 7)]
    lines = [re.split(r"\s{2,}#", line)[0].strip() for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


@pytest.fixture
def api_url(engine: Engine, temporal_env: WorkflowEnvironment, sandbox_server: SandboxServer) -> Iterator[str]:
    settings = Settings.model_construct(api_token=SecretStr(DEV_API_TOKEN), events_url=None, events_secret=None)
    gateways = GatewayDirectory(sandbox_server.base_url, {SANDBOX_OID: SANDBOX_TOKEN}, timeout=5.0)
    server = ThreadedUvicorn(create_app(engine, temporal_env.client, settings, task_queue=TASK_QUEUE, gateways=gateways)).start()
    try:
        yield server.url
    finally:
        server.stop()


def _ok(run: Run) -> str:
    assert run.exit_code == 0, (run.exit_code, run.stdout, run.stderr)
    return run.stdout


async def test_the_readme_walk_from_a_new_clinic_to_a_tap(
    billing: Billing, db: Engine, sandbox: SandboxControl, api_url: str, cli_environment: dict[str, str]
) -> None:
    lines = walk()
    assert any(line.startswith("billing sandbox tap") for line in lines)
    files: dict[str, str] = {}
    found: dict[str, str] = {}
    paying: asyncio.subprocess.Process | None = None
    async with httpx.AsyncClient(base_url=api_url, headers={"Authorization": f"Bearer {DEV_API_TOKEN}"}, timeout=30) as api:
        for line in lines:
            line = line.replace("front-desk-1", "counter-1")
            if line.startswith("API="):
                continue
            if line.startswith("curl"):
                match = CURL.search(line)
                assert match, line
                body = json.loads(match["body"] if match["body"] else files[match["file"]])
                answer = await api.post(match.group(1), json=body)
                assert answer.status_code == 201, (line, answer.text)
                continue
            command, _, target = line.partition(" > ")
            words = shlex.split(command)
            assert words[0] == "billing", line
            args = [found.get(word, word) for word in words[1:]]
            if "--wait" in args:  # in its own process: it waits while the next line taps (CliRunner is one at a time)
                paying = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "cli.main",
                    *args,
                    cwd=README.parent,
                    env={**os.environ, **cli_environment},
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                )
                continue
            if args[:2] == ["sandbox", "tap"]:
                for _ in range(100):  # until the terminal shows the amount, as a person would retry
                    run = await billing(*args)
                    if run.exit_code == 0:
                        break
                    await asyncio.sleep(0.2)
                _ok(run)
                assert paying is not None
                stdout, stderr = await asyncio.wait_for(paying.communicate(), 60)
                paid = _ok(Run(paying.returncode or 0, stdout.decode(), stderr.decode()))
                found["PAYMENT_ID"] = paid.split()[1].rstrip(":")
                assert "approved" in paid, paid
                continue
            out = _ok(await billing(*args))
            if target:
                files[target] = out
            if args[0] == "enroll":
                found["SUBSCRIPTION_ID"] = out.split()[0]
            if args[0] == "counter-invoice":
                found["INVOICE_ID"] = out.split()[1]
    with Session(db) as session:
        payment = session.get(Payment, found["PAYMENT_ID"])
        assert payment is not None and payment.approved_cents == 12_000 and payment.refunded_cents == 2_000
