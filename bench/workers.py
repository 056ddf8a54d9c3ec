"""A pool of worker processes (`bench.worker_process`) that a driver can start, SIGKILL and restart.

Shared by the benchmark, the chaos run and the scale-out test. Each worker writes its counters to a
stats file (see `bench.worker_process`); `stats()` asks every live worker for a fresh copy (SIGUSR1)
and reads them all, dead workers' last copies included, so a killed worker's work still counts.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class WorkerSpec:
    """Where the workers connect and how they are tuned (None: the billing worker's own settings)."""

    database_url: str
    temporal_address: str
    task_queue: str
    gravity_url: str
    namespace: str = "default"
    mode: str = "billing"
    db_pool: int = 10
    max_activities: int | None = None
    max_workflow_tasks: int | None = None
    profile: bool = False


@dataclass
class WorkerHandle:
    name: str
    process: subprocess.Popen[bytes]
    stats_file: Path
    killed: bool = False
    log: Path | None = None

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


@dataclass
class WorkerPool:
    """Start with `start(n)`; every worker gets a unique name (w1, w2, ...; restarts get new names)."""

    spec: WorkerSpec
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="billing-workers-")))
    workers: list[WorkerHandle] = field(default_factory=list)
    kills: int = 0
    _serial: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, count: int = 1, *, wait: bool = True) -> list[WorkerHandle]:
        started = [self._spawn() for _ in range(count)]
        if wait:
            for handle in started:
                self.wait_ready(handle)
        return started

    def _spawn(self) -> WorkerHandle:
        with self._lock:
            self._serial += 1
            name = f"w{self._serial}"
        stats = self.folder / f"{name}.json"
        log = self.folder / f"{name}.log"
        spec = self.spec
        command = [
            sys.executable,
            "-m",
            "bench.worker_process",
            "--database-url",
            spec.database_url,
            "--temporal",
            spec.temporal_address,
            "--namespace",
            spec.namespace,
            "--task-queue",
            spec.task_queue,
            "--gravity-url",
            spec.gravity_url,
            "--stats",
            str(stats),
            "--name",
            name,
            "--mode",
            spec.mode,
            "--db-pool",
            str(spec.db_pool),
        ]
        if spec.max_activities is not None:
            command += ["--max-activities", str(spec.max_activities)]
        if spec.max_workflow_tasks is not None:
            command += ["--max-workflow-tasks", str(spec.max_workflow_tasks)]
        if spec.profile:
            command += ["--profile", str(self.folder / f"{name}.prof")]
        with open(log, "wb") as out:
            process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT)
        handle = WorkerHandle(name, process, stats, log=log)
        self.workers.append(handle)
        return handle

    def wait_ready(self, handle: WorkerHandle, timeout: float = 60.0) -> None:
        """Until the worker has written its first stats (it polls from then on)."""
        deadline = time.monotonic() + timeout
        while not handle.stats_file.exists():
            if handle.killed:
                return
            if not handle.alive:
                raise RuntimeError(f"worker {handle.name} exited at start:\n{_tail(handle.log)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker {handle.name} not ready after {timeout} s:\n{_tail(handle.log)}")
            time.sleep(0.05)

    @property
    def live(self) -> list[WorkerHandle]:
        return [w for w in self.workers if w.alive]

    def kill(self, handle: WorkerHandle) -> None:
        """SIGKILL: no goodbye to Temporal, no rollback, connections dropped mid-flight."""
        if handle.alive:
            handle.killed = True
            os.kill(handle.process.pid, signal.SIGKILL)
            handle.process.wait(timeout=10)
            self.kills += 1

    def stop(self, timeout: float = 20.0) -> None:
        """Stop every live worker gracefully (SIGTERM), killing what does not stop in time."""
        for handle in self.live:
            handle.process.terminate()
        deadline = time.monotonic() + timeout
        for handle in self.workers:
            remaining = max(0.1, deadline - time.monotonic())
            try:
                handle.process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                handle.process.kill()
                handle.process.wait(timeout=10)

    def stats(self, fresh: bool = True) -> dict[str, dict[str, Any]]:
        """Each worker's latest counters by name (live ones refreshed first when `fresh`)."""
        before = {h.name: _read(h.stats_file).get("seq", -1) for h in self.workers}
        if fresh:
            for handle in self.live:
                with _quiet():
                    os.kill(handle.process.pid, signal.SIGUSR1)
            deadline = time.monotonic() + 5.0
            for handle in self.live:
                while _read(handle.stats_file).get("seq", -1) <= before[handle.name] and time.monotonic() < deadline:
                    time.sleep(0.01)
        return {h.name: _read(h.stats_file) for h in self.workers}

    def usage(self) -> dict[str, dict[str, float]]:
        """CPU seconds and RSS bytes of each live worker, measured from outside (psutil)."""
        result = {}
        for handle in self.live:
            with _quiet():
                proc = psutil.Process(handle.process.pid)
                cpu = proc.cpu_times()
                result[handle.name] = {"cpu_s": cpu.user + cpu.system, "rss": float(proc.memory_info().rss)}
        return result


def totals(stats: dict[str, dict[str, Any]], key: str) -> float:
    return float(sum(s.get(key, 0) for s in stats.values()))


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}


def _tail(path: Path | None, lines: int = 30) -> str:
    if path is None or not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class _quiet:
    """Ignore a worker that died between the check and the call."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, error: object, tb: object) -> bool:
        return isinstance(error, (ProcessLookupError, psutil.NoSuchProcess))
