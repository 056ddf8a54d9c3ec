"""`billing api` never serves a configured database (or Temporal) with the well-known development
token: without BILLING_API_TOKEN it refuses to start, in one line naming the variable."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ADDRESSES = ("DATABASE_URL", "BILLING_DATABASE_URL", "TEMPORAL_ADDRESS", "BILLING_TEMPORAL_ADDRESS", "BILLING_API_TOKEN")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("configured", ["database", "temporal"])
def test_billing_api_without_a_token_refuses_a_configured_stack(configured: str, database_url: str, tmp_path: Path) -> None:
    env = {name: value for name, value in os.environ.items() if name not in ADDRESSES}
    env.update(
        BILLING_DATA_DIR=str(tmp_path), BILLING_API_PORT=str(_free_port()), BILLING_TEMPORAL_PORT=str(_free_port()), BILLING_TEMPORAL_UI_PORT=str(_free_port())
    )
    if configured == "database":
        env["DATABASE_URL"] = database_url  # the real database; Temporal left to the embedded dev server
    else:
        env["TEMPORAL_ADDRESS"] = f"127.0.0.1:{_free_port()}"
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "api"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # it started serving (and its embedded servers with it)
        out, err = process.communicate()
        pytest.fail(f"billing api started without a token: {out} {err}")
    assert process.returncode == 1, (out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "BILLING_API_TOKEN" in lines[0], err
    assert "development token" not in out + err
    assert not (tmp_path / "temporal").exists() and not any(tmp_path.iterdir())  # nothing embedded was started
