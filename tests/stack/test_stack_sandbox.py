"""`billing up` runs the Gravity sandbox too, says where, and `billing worker` says when no
sandbox answers."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
from stack_testing import BillingUp, run_billing

from foundation.settings import DEV_API_TOKEN, SANDBOX_TOKEN


def _stop(up: BillingUp) -> str:
    up.process.send_signal(signal.SIGINT)
    code, stdout, stderr = up.finish()
    assert code == 0 and "Traceback" not in stderr, stderr
    return stdout


def test_billing_up_starts_the_sandbox_and_says_where(data_dir: Path, stack_env: dict[str, str]) -> None:
    port = stack_env["BILLING_SANDBOX_PORT"]
    up = BillingUp(stack_env)
    try:
        output = up.wait_ready()
        base_url = f"http://127.0.0.1:{port}/virtualterminal/v1"
        assert f"gravity sandbox: {base_url}" in output
        assert output.index("billing worker") < output.index("billing api")  # the order to start the rest
        assert DEV_API_TOKEN in output and SANDBOX_TOKEN not in output
        health = httpx.get(f"http://127.0.0.1:{port}/_sandbox/health", timeout=5)
        assert health.status_code == 200
    finally:
        _stop(up)
    try:
        httpx.get(f"http://127.0.0.1:{port}/_sandbox/health", timeout=2)
        raise AssertionError("the sandbox still answers after billing up stopped")
    except httpx.ConnectError:
        pass


def test_worker_warns_when_no_sandbox_answers(stack_env: dict[str, str]) -> None:
    env = {**stack_env, "TEMPORAL_ADDRESS": "127.0.0.1:1", "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    result = run_billing("worker", env=env, timeout=60)
    assert f"no Gravity sandbox answers at http://127.0.0.1:{stack_env['BILLING_SANDBOX_PORT']}" in result.stderr
    assert "billing up" in result.stderr
