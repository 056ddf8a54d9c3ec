"""CPU used by the rest of the stack while a benchmark phase runs: the Temporal server, PostgreSQL and
this driver process (which also hosts the Gravity sandbox).

Why: on a 2-core machine the worker is not the only thing a cycle costs. Reporting each part per
unit shows where the time goes and which side a change moved, next to the worker's own figures.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class StackCpu:
    """Cumulative CPU seconds of each part at one moment."""

    temporal_s: float
    postgres_s: float
    driver_s: float

    def minus(self, earlier: StackCpu) -> StackCpu:
        return StackCpu(self.temporal_s - earlier.temporal_s, self.postgres_s - earlier.postgres_s, self.driver_s - earlier.driver_s)


def _cpu(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 0.0
    return times.user + times.system


def temporal_server(address: str) -> psutil.Process | None:
    """The process listening on the Temporal frontend's port (None when it is not on this machine)."""
    port = int(address.rsplit(":", 1)[-1])
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        return None
    for conn in connections:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            return psutil.Process(conn.pid)
    return None


def sample(server: psutil.Process | None) -> StackCpu:
    """Now: the server's CPU, every `postgres` process's (backends come and go; the ones that ended
    between two samples are missed, so this is a lower bound), and this process's."""
    postgres = sum(_cpu(p) for p in psutil.process_iter(["name"]) if p.info["name"] == "postgres")
    return StackCpu(_cpu(server) if server else 0.0, postgres, _cpu(psutil.Process(os.getpid())))
