"""How the operator commands reach a running stack, and the output and error habits they share.

Why they never start an embedded stack: an operator command is a short client. Starting PostgreSQL
and a Temporal server just to cancel one subscription would run the command against an empty,
freshly started world that no worker serves, and stop it again a second later. So the commands use
`DATABASE_URL` / `TEMPORAL_ADDRESS` when set, otherwise the embedded servers that `billing up` (or
`billing demo --keep-running`) is running in the data folder, and otherwise refuse with one line.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import socket
from collections.abc import Awaitable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, overload
from urllib.parse import quote

import typer
from pydantic_core import to_jsonable_python
from rich.console import Console

from cli.errors import BAD_INPUT, cli_errors, err_console, fail
from foundation.converter import data_converter
from foundation.money import format_usd
from foundation.scopes import CLI_ACTOR_PREFIX, Actor
from foundation.settings import Settings
from stack.embedded import load_settings, redact_url
from stack.postgres import DATABASE_NAME
from stack.processes import ProcessRef, port_answers, read_json
from stack.temporal import STATE_FILE

if TYPE_CHECKING:  # both load slowly, and most commands need neither
    from sqlalchemy import Engine
    from temporalio.client import Client

    from operations.refusals import Refusal

T = TypeVar("T")

START_FIRST = "start the stack first: billing up"

console = Console(soft_wrap=True, highlight=False)


@dataclass(frozen=True)
class Connection:
    """Where the commands find the stack, and the settings they run with."""

    settings: Settings
    database_url: str
    temporal_address: str | None
    namespace: str
    #: With `--demo`: where the demo's sandbox state is kept (its gateway, for `billing reconcile`).
    demo_sandbox_state: Path | None = None

    @property
    def task_queue(self) -> str:
        return self.settings.temporal_task_queue


# ============================================================================ finding the stack
def embedded_temporal_address(data_dir: Path) -> tuple[str, str] | None:
    """(address, namespace) of the dev server `billing up` runs in `data_dir`, if it is running."""
    state = read_json(data_dir / STATE_FILE)
    if not state or "server" not in state or "address" not in state:
        return None
    if not ProcessRef.from_dict(state["server"]).alive():
        return None
    host, _, port = str(state["address"]).rpartition(":")
    if not port.isdigit() or not port_answers(int(port), host or "127.0.0.1"):
        return None
    return str(state["address"]), str(state.get("namespace", "default"))


def embedded_database_url(data_dir: Path) -> str | None:
    """The URL of the embedded PostgreSQL of `data_dir` (the one stack.postgres starts), if running.

    It listens only on a unix socket; the socket directory is the fifth line of postmaster.pid. Only
    read here: a stale pid file is left for the stack's own launcher to clear.
    """
    import psutil

    pgdata = (data_dir / "postgres").absolute()
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        process = psutil.Process(int(lines[0].strip()))
        if process.name() != "postgres" or process.status() == psutil.STATUS_ZOMBIE:
            return None
    except (OSError, ValueError, IndexError, psutil.Error):
        return None
    if len(lines) < 5 or not lines[4].strip():
        return None
    socket_dir, port = lines[4].strip(), lines[3].strip()
    url = f"postgresql://postgres@/{DATABASE_NAME}?host={quote(socket_dir, safe='/')}"
    return url if port in ("", "5432") else f"{url}&port={port}"


_books = {"demo": False}


def use_demo_books(demo: bool) -> None:
    """Point `connection()` at the last demo's books (`billing --demo ...`) or back at the configured ones."""
    _books["demo"] = demo


def connection(*, temporal: bool = True) -> Connection:
    """The configured stack, else the running embedded one, else one red line and exit 1."""
    with cli_errors():
        settings = load_settings()
    data_dir = Path(settings.data_dir).expanduser().absolute()
    database_url = settings.database_url or embedded_database_url(data_dir)
    if database_url is None:
        fail(START_FIRST, f"no DATABASE_URL is set and no embedded PostgreSQL is running in {data_dir}")
    if _books["demo"]:
        return _demo_connection(settings, data_dir, database_url, temporal=temporal)
    address, namespace = settings.temporal_address, settings.temporal_namespace
    if temporal and address is None:
        found = embedded_temporal_address(data_dir)
        if found is None:
            fail(START_FIRST, f"no TEMPORAL_ADDRESS is set and no embedded Temporal server is running in {data_dir}")
        address, namespace = found
    return Connection(settings, database_url, address, namespace)


def _demo_connection(settings: Settings, data_dir: Path, server_url: str, *, temporal: bool) -> Connection:
    """The last demo's database on the same PostgreSQL server, and its task queue and namespace."""
    from sqlalchemy.engine import make_url

    from demo.record import RECORD_FILE, read_record

    record = read_record(data_dir)
    if record is None:
        fail("no demo has run here yet: run billing demo first", f"--demo reads {data_dir / RECORD_FILE}")
    database_url = make_url(server_url).set(database=record.database).render_as_string(hide_password=False)
    address = settings.temporal_address
    if temporal and address is None:
        found = embedded_temporal_address(data_dir)
        if found is None:
            fail(START_FIRST, f"no TEMPORAL_ADDRESS is set and no embedded Temporal server is running in {data_dir}")
        address = found[0]
    settings = settings.model_copy(update={"temporal_task_queue": record.task_queue})
    return Connection(settings, database_url, address, record.namespace, demo_sandbox_state=record.sandbox_state_file(data_dir))


def engine_of(conn: Connection) -> Engine:
    from models.db import get_engine  # on use: the models load SQLAlchemy's tables, which slows every command's start

    return get_engine(conn.database_url, conn.settings.db_pool_size)


async def temporal_client(conn: Connection) -> Client:
    """A client with the engine's data converter and an identity naming the operator.

    Why the identity: Temporal records it on every update and signal, so the audit trail
    (`billing history`) can say who asked for a cancel or a card change.
    """
    from temporalio.client import Client

    assert conn.temporal_address is not None
    try:
        return await Client.connect(
            conn.temporal_address,
            namespace=conn.namespace,
            data_converter=data_converter,
            identity=operator_identity(),
        )
    except RuntimeError as error:
        fail(f"cannot reach Temporal at {conn.temporal_address}", str(error).splitlines()[0] if str(error) else None)


def cli_actor() -> Actor:
    """Who the audit trail names for an operator command: `cli:<os user>`."""
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        user = "unknown"
    return Actor(f"{CLI_ACTOR_PREFIX}{user}")


def operator_identity() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        user = "unknown"
    return f"billing-cli:{user}@{socket.gethostname()}"


# ============================================================================ running and answering
def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


@contextmanager
def operator_errors(conn: Connection | None = None, *, as_json: bool = False) -> Iterator[None]:
    """Settings and stack problems, an unreachable database and refusals: one red line, exit 1."""
    from psycopg import errors as pg_errors
    from sqlalchemy.exc import OperationalError, ProgrammingError
    from temporalio.service import RPCError

    from operations.refusals import Refusal

    where = redact_url(conn.database_url) if conn else "the database"
    try:
        with cli_errors():
            yield
    except OperationalError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        refuse(f"cannot reach the database at {where}: {reason}", as_json=as_json, error="unavailable")
    except ProgrammingError as error:
        if not isinstance(getattr(error, "orig", None), pg_errors.UndefinedTable):
            raise
        refuse(f"the database at {where} has no billing tables: run billing migrate", as_json=as_json, error="unavailable")
    except RPCError as error:
        address = conn.temporal_address if conn else "Temporal"
        refuse(f"Temporal at {address} answered: {error.message}", as_json=as_json, error="unavailable")
    except Refusal as error:
        refuse(api_message(error), as_json=as_json, error=error.kind)


def api_message(error: Refusal) -> str:
    """The `message` the API answers for an operation's refusal (`api.errors.from_refusal`): a 404 says only why."""
    return error.reason if error.kind == "not_found" else str(error)


async def answer_or_none(awaitable: Awaitable[T], timeout_s: float, waiting: str, gave_up: str) -> T | None:
    """`awaitable`'s answer, saying `waiting` on stderr once it takes over a second and `gave_up`
    (with None) after `timeout_s`, so a slow answer is never a silent wait."""
    task = asyncio.ensure_future(awaitable)
    done, _ = await asyncio.wait({task}, timeout=min(1.0, timeout_s))
    if not done:
        err_console.print(waiting, style="yellow")
        done, _ = await asyncio.wait({task}, timeout=max(0.0, timeout_s - 1.0))
    if not done:
        task.cancel()
        err_console.print(gave_up, style="yellow")
        return None
    return task.result()


def refuse(message: str, *, as_json: bool = False, error: str = "refused", code: int = 1) -> NoReturn:
    """One red line on stderr (and, with --json, the same as a JSON object on stdout); exit `code`."""
    if as_json:
        typer.echo(json.dumps({"error": error, "message": message}))
    fail(message, code=code)


@overload
def option_day(text: str, option: str, *, as_json: bool, code: int = ...) -> date: ...
@overload
def option_day(text: None, option: str, *, as_json: bool, code: int = ...) -> None: ...
def option_day(text: str | None, option: str, *, as_json: bool, code: int = BAD_INPUT) -> date | None:
    """A day typed for `option` (YYYY-MM-DD; None when not given), else one line naming the option, exit `code`."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        refuse(f"{option}: {text!r} is not a date (YYYY-MM-DD)", as_json=as_json, code=code)


def print_json(value: Any) -> None:
    typer.echo(json.dumps(to_jsonable_python(value, fallback=str), indent=2, sort_keys=False))


def money(cents: int | None) -> str:
    return "" if cents is None else format_usd(int(cents))


def local_time(moment: Any, tz: str | None = None) -> str:
    """An instant for people: in the clinic's zone when known, else UTC."""
    if moment is None:
        return ""
    import pendulum

    instant = pendulum.instance(moment)
    return instant.in_timezone(tz or "UTC").format("YYYY-MM-DD HH:mm zz")


def write_file(path: Path, text: str) -> None:
    try:
        path.write_text(text)
    except OSError as error:
        fail(f"cannot write {path}: {error.strerror}")
