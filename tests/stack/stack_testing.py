"""What the embedded-stack tests share: free ports, the processes of a data folder (found by its
path on their command line) and `billing` subprocesses."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
ADDRESS_VARIABLES = ("DATABASE_URL", "BILLING_DATABASE_URL", "TEMPORAL_ADDRESS", "BILLING_TEMPORAL_ADDRESS")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def processes_of(data_dir: Path) -> list[psutil.Process]:
    """Every live process whose command line names `data_dir` (postmaster, temporal server)."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        try:
            if process.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if str(data_dir) in " ".join(process.info["cmdline"] or []):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def with_children(processes: list[psutil.Process]) -> list[psutil.Process]:
    """The processes and all their descendants (PostgreSQL's backends do not name the folder)."""
    everything = list(processes)
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            everything += process.children(recursive=True)
    return everything


def wait_gone(processes: list[psutil.Process], timeout: float = 15.0) -> list[psutil.Process]:
    """Wait for the processes to end; return those still alive."""
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    return [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def _default_sigint() -> None:
    # A child inherits an *ignored* SIGINT (e.g. when pytest runs as a background job); Python
    # then never raises KeyboardInterrupt. Reset it so the test sends a real Ctrl-C.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def billing(*args: str, env: dict[str, str], **kwargs) -> subprocess.Popen:
    """Start `python -m cli.main ARGS` in the repository root."""
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
        **kwargs,
    )


def run_billing(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    process = billing(*args, env=env)
    stdout, stderr = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


class BillingUp:
    """A `billing up` subprocess whose output is collected by a thread (no pipe can fill up)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.process = billing("up", env=env)
        self.lines: list[str] = []
        self.ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if line.startswith("ready"):
                self.ready.set()

    def wait_ready(self, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                stderr = self.process.stderr.read() if self.process.stderr else ""
                raise AssertionError(f"billing up did not become ready:\n{self.output}\n{stderr}")
        return self.output

    def finish(self, timeout: float = 60) -> tuple[int, str, str]:
        """Wait for the exit; return (code, stdout, stderr)."""
        code = self.process.wait(timeout)
        self._reader.join(5)
        stderr = self.process.stderr.read() if self.process.stderr else ""
        return code, self.output, stderr

    @property
    def output(self) -> str:
        return "".join(self.lines)
