"""`billing up` runs the Gravity sandbox too, says where, keeps its cards across a restart, and
`billing worker` says when no sandbox answers."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx
from stack_testing import BillingUp, run_billing

from foundation.settings import DEV_API_TOKEN, SANDBOX_OID, SANDBOX_TOKEN
from gravity.client import GravityClient
from gravity.results import Outcome


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


async def _save_card(base_url: str) -> str:
    async with GravityClient(base_url, SANDBOX_OID, SANDBOX_TOKEN) as gravity:
        saved = await gravity.tokenize(card_number="4111111111111111", exp_mmyy="1230", external_id="fh-save-1")
        assert saved.card_ref is not None
        return saved.card_ref


async def _charge(base_url: str, card_ref: str) -> Outcome:
    async with GravityClient(base_url, SANDBOX_OID, SANDBOX_TOKEN) as gravity:
        result = await gravity.charge_saved_card(card_ref=card_ref, amount_cents=4_500, external_id="fh-charge-1")
        return result.outcome


def test_saved_cards_survive_a_restart_of_billing_up(data_dir: Path, stack_env: dict[str, str]) -> None:
    base_url = f"http://127.0.0.1:{stack_env['BILLING_SANDBOX_PORT']}/virtualterminal/v1"
    first = BillingUp(stack_env)
    try:
        first.wait_ready()
        card_ref = asyncio.run(_save_card(base_url))
    finally:
        _stop(first)
    assert (data_dir / "sandbox.json").exists()
    second = BillingUp(stack_env)
    try:
        second.wait_ready()
        assert asyncio.run(_charge(base_url, card_ref)) is Outcome.APPROVED
    finally:
        _stop(second)
