"""`billing sandbox` runs the sandbox in the foreground with printed defaults and a masked token."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from foundation.settings import SANDBOX_OID, SANDBOX_TOKEN

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_billing_sandbox_command(tmp_path: Path) -> None:
    port = _free_port()
    out = tmp_path / "out.txt"
    with out.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "sandbox", "--port", str(port), "--state-file", str(tmp_path / "s.json")],
            cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}/virtualterminal/v1"
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/_sandbox/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and process.poll() is None, out.read_text()
            time.sleep(0.1)
        good = httpx.get(f"{base}/orgs/{SANDBOX_OID}/transactions/x", headers={"Authorization": f"Bearer {SANDBOX_TOKEN}"})
        bad = httpx.get(f"{base}/orgs/{SANDBOX_OID}/transactions/x", headers={"Authorization": "Bearer nope"})
        unknown = httpx.get(f"{base}/orgs/42/transactions/x", headers={"Authorization": f"Bearer {SANDBOX_TOKEN}"})
        assert (good.status_code, bad.status_code, unknown.status_code) == (404, 401, 404)
    finally:
        process.terminate()
        process.wait(timeout=10)
    printed = out.read_text()
    for option in ("--host", "--port", "--oid", "--token", "--postback-url", "--postback-secret", "--state-file"):
        assert option in printed
    assert SANDBOX_OID in printed and SANDBOX_TOKEN not in printed
