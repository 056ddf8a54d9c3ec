"""The Gravity sandbox in its own process (the demo, `bench/charge_cost.py`), so it does not share the GIL of the process it serves."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from gravity.sandbox.app import BASE_PATH

START_BOUND_S = 60.0
STOP_BOUND_S = 10.0
SAVING_STOP_BOUND_S = 120.0  # a long run's state is written as the sandbox stops


@dataclass(frozen=True)
class SandboxProcess:
    root_url: str
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return self.root_url + BASE_PATH

    def wait_ready(self, timeout_s: float = START_BOUND_S) -> None:
        """Return once the sandbox answers (at once for one not started here)."""
        if self.process is not None:
            _wait_until_healthy(self.process, self.root_url, timeout_s)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def sandbox_process(*, timeout_s: float = START_BOUND_S, ready: bool = True, state_file: Path | None = None) -> Iterator[SandboxProcess]:
    """Run `billing sandbox` on a free loopback port until the block ends; each run starts afresh.

    With `state_file` the sandbox writes its state there as it stops (a previous run's file is
    removed first), so the run's gateway records outlive it; without, it keeps none.
    With `ready=False` the block starts at once and calls `wait_ready()` when it needs the sandbox,
    so the sandbox imports while the block does other work."""
    port = _free_port()
    kept = ["--memory-only"]
    if state_file is not None:
        state_file.unlink(missing_ok=True)
        kept = ["--state-file", str(state_file), "--save-at-stop"]
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "sandbox", "--host", "127.0.0.1", "--port", str(port), *kept],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    root = f"http://127.0.0.1:{port}"
    try:
        sandbox = SandboxProcess(root, process)
        if ready:
            sandbox.wait_ready(timeout_s)
        yield sandbox
    finally:
        process.terminate()
        try:
            process.wait(timeout=STOP_BOUND_S if state_file is None else SAVING_STOP_BOUND_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_healthy(process: subprocess.Popen[bytes], root: str, timeout_s: float) -> None:
    """Poll the sandbox's health with one HTTP client: `httpx.get` builds a TLS context per call,
    a fifth of a second of CPU each, which made the wait itself slow the start on a busy machine."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=1.0) as http:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the sandbox exited at start: {process.stderr.read().decode(errors='replace')[-500:] if process.stderr else ''}")
            with contextlib.suppress(httpx.HTTPError):
                if http.get(f"{root}/_sandbox/health").status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the sandbox did not answer on {root} within {timeout_s:.0f} s")
            time.sleep(0.1)
