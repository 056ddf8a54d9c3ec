"""`billing sandbox` runs the sandbox in the foreground with printed defaults; it keeps its cards in
the data folder across restarts and prints a token only when it is the development one."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from foundation.settings import SANDBOX_OID, SANDBOX_TOKEN
from gravity.client import GravityClient
from gravity.results import Outcome

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
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
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
    assert SANDBOX_OID in printed and printed.count(SANDBOX_TOKEN) == 1  # the development token, once, whole


def _start(port: int, out: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    with out.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "sandbox", "--port", str(port), *args],
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/_sandbox/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline and process.poll() is None, out.read_text()
        time.sleep(0.1)


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(timeout=10)


async def _save(base_url: str) -> str:
    async with GravityClient(base_url, SANDBOX_OID, SANDBOX_TOKEN) as gravity:
        saved = await gravity.tokenize(card_number="4111111111111111", exp_mmyy="1230", external_id="t-1")
        assert saved.card_ref is not None
        return saved.card_ref


async def _charge(base_url: str, card_ref: str) -> Outcome:
    async with GravityClient(base_url, SANDBOX_OID, SANDBOX_TOKEN) as gravity:
        return (await gravity.charge_saved_card(card_ref=card_ref, amount_cents=4_500, external_id="s-1")).outcome


def test_cards_survive_a_restart_by_default(tmp_path: Path) -> None:
    env = {**os.environ, "BILLING_DATA_DIR": str(tmp_path / "data")}
    port = _free_port()
    base = f"http://127.0.0.1:{port}/virtualterminal/v1"
    first = _start(port, tmp_path / "first.txt", env=env)
    try:
        card_ref = asyncio.run(_save(base))
    finally:
        _stop(first)
    assert (tmp_path / "data" / "sandbox.json").exists()
    second = _start(port, tmp_path / "second.txt", env=env)
    try:
        assert asyncio.run(_charge(base, card_ref)) is Outcome.APPROVED
    finally:
        _stop(second)


def test_another_token_and_the_postback_secret_are_never_printed(tmp_path: Path) -> None:
    port = _free_port()
    out = tmp_path / "out.txt"
    process = _start(port, out, "--token", "merchant-secret-123", "--postback-secret", "hmac-key-456", "--memory-only")
    _stop(process)
    printed = out.read_text()
    assert "merchant-secret-123" not in printed and "me****" not in printed and "hmac-key-456" not in printed
    assert "(memory only)" in printed
