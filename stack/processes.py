"""Small process and filesystem helpers shared by the PostgreSQL and Temporal launchers.

Why they exist: "never leave a stray process" needs a reliable answer to "is the process that
started this server still alive?". A bare pid is not enough (pids are reused), so a process is
identified by its pid *and* its start time.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from stack.errors import StackError


@dataclass(frozen=True)
class ProcessRef:
    """A process identified by pid and creation time, so a recycled pid is not mistaken for it."""

    pid: int
    create_time: float

    @classmethod
    def of(cls, pid: int) -> ProcessRef:
        return cls(pid=pid, create_time=psutil.Process(pid).create_time())

    @classmethod
    def me(cls) -> ProcessRef:
        return cls.of(os.getpid())

    def alive(self) -> bool:
        try:
            process = psutil.Process(self.pid)
            if abs(process.create_time() - self.create_time) > 0.5:
                return False
            return process.status() != psutil.STATUS_ZOMBIE
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return False

    @classmethod
    def from_dict(cls, data: dict) -> ProcessRef:
        return cls(pid=int(data["pid"]), create_time=float(data["create_time"]))

    def to_dict(self) -> dict:
        return asdict(self)


def read_json(path: Path) -> dict | None:
    """A small state file, or None when it is missing or unreadable (a half-written file is stale)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_json(path: Path, data: dict) -> None:
    """Write atomically (temp file + rename) so a kill mid-write never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def ensure_data_dir(path: Path) -> Path:
    """Create the data folder if needed and prove we can write to it; return its absolute path."""
    path = Path(path).expanduser().absolute()
    probe = path / ".write-test"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe.write_text("ok")
        probe.unlink()
    except OSError as error:
        reason = error.strerror or error.__class__.__name__
        raise StackError(f"cannot write the data folder {path} ({reason}): set BILLING_DATA_DIR to a folder you can write") from None
    return path


@contextlib.contextmanager
def data_dir_lock(data_dir: Path) -> Iterator[None]:
    """Serialise starting/joining the servers of one data folder across processes.

    Two programs started at the same moment on the same folder must not both decide to start a
    PostgreSQL or a Temporal server there; the lock is held only while deciding and starting.
    """
    with open(data_dir / "stack.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something already listens on host:port.

    SO_REUSEADDR mirrors what the server itself does, so sockets lingering in TIME_WAIT after a
    previous run do not count as "in use".
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def port_answers(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log file, for an error message; empty when it cannot be read."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
