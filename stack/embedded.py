"""`EmbeddedStack`: start what the settings leave unset, migrate, and stop it all again.

With no `DATABASE_URL` an embedded PostgreSQL runs in `<data_dir>/postgres`; with no
`TEMPORAL_ADDRESS` a Temporal dev server runs with `<data_dir>/temporal.sqlite`. Both are reused on
the next run (same data), and everything this process started is stopped when the `with` block
ends: normally, on an exception, on Ctrl-C, or on SIGTERM/SIGHUP (turned into KeyboardInterrupt
while the block runs, so `finally` and `__exit__` run). See stack.postgres and stack.temporal for
what happens after a SIGKILL (PostgreSQL is adopted and stopped by the next run on the folder; the
Temporal server dies with its owner on Linux).

Problems a person can fix surface as `StackError` with one line saying what to do.

    with EmbeddedStack() as addresses:
        print(addresses.database_url, addresses.temporal_address, addresses.ui_url)

`async with` works too. It starts the servers synchronously (a few seconds, blocking the loop on
purpose: their lifetimes stay tied to the main thread) and turns SIGTERM into cancellation of the
task that entered the block.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, TypeAlias

from pydantic import ValidationError

from foundation.settings import Settings, describe_settings_error, get_settings
from stack.errors import StackError
from stack.postgres import EmbeddedPostgres, start_postgres
from stack.processes import data_dir_lock, ensure_data_dir
from stack.temporal import DB_FILE, EmbeddedTemporal, start_temporal

__all__ = ["EmbeddedStack", "StackAddresses", "StackError", "load_settings", "redact_url"]

# What signal.signal returns and takes back: a function, SIG_DFL or SIG_IGN, or None (set outside Python).
SignalHandler: TypeAlias = "Callable[[int, FrameType | None], Any] | int | None"
_TERMINATING = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s is not None)


def load_settings() -> Settings:
    """The process settings, with a bad value reported as one StackError line instead of a traceback."""
    try:
        return get_settings()
    except ValidationError as error:
        raise StackError(describe_bad_setting(error)) from None


def describe_bad_setting(error: ValidationError) -> str:
    """One line naming each variable the user actually set (TEMPORAL_ADDRESS, not its BILLING_ twin) and what is wrong."""
    parts = []
    for item in error.errors():
        name = str(item["loc"][0]) if item.get("loc") else ""
        reason = str(item["msg"]).removeprefix("Value error, ")
        parts.append(f"{_variable_set_for(name)}: {reason}")
    return "bad setting: " + "; ".join(parts) if parts else describe_settings_error(error)


def _variable_set_for(name: str) -> str:
    """The environment variable behind the setting pydantic names `name` (a field or its first
    alias): the alias present in the environment, else the prefixed name."""
    import os

    present = {key.upper() for key in os.environ}
    for field, info in Settings.model_fields.items():
        alias = info.validation_alias
        choices = [str(c) for c in getattr(alias, "choices", ())]
        if name == field or name in choices:
            names = choices or [f"BILLING_{field.upper()}"]
            return next((candidate for candidate in names if candidate.upper() in present), names[0])
    return name if name.isupper() else f"BILLING_{name.upper()}"


def redact_url(url: str) -> str:
    """A database URL safe to print: the password, if any, becomes ***."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
        return url if parsed.password is None else parsed.render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown only by its tail
        return "…@" + url.rsplit("@", 1)[-1]


@dataclass(frozen=True)
class StackAddresses:
    """Where the running stack can be reached. `ui_url` is None for an external Temporal."""

    database_url: str
    temporal_address: str | None
    temporal_namespace: str
    ui_url: str | None
    data_dir: Path
    postgres_embedded: bool
    temporal_embedded: bool


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def _ignore(signum: int, frame: FrameType | None) -> None:
    """While stopping, a second Ctrl-C or SIGTERM must not abandon the servers half-stopped."""


class EmbeddedStack:
    """Context manager that starts the embedded PostgreSQL and/or Temporal and stops them on exit.

    `temporal=False` starts only the database (for `billing migrate`); `migrate=False` skips the
    migrations; `temporal_args` are passed to `temporal server start-dev` as they are (tests add
    `stack.temporal.SIMULATED_TIME_ARGS`); `temporal_store` names the dev server's SQLite file in
    the data dir (the benchmark keeps its own).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        temporal: bool = True,
        migrate: bool = True,
        temporal_args: Sequence[str] = (),
        temporal_store: str = DB_FILE,
        startup_timeout_s: float = 60.0,
        handle_signals: bool = True,
    ) -> None:
        self._settings = settings
        self._want_temporal = temporal
        self._migrate = migrate
        self._temporal_args = tuple(temporal_args)
        self._temporal_store = temporal_store
        self._timeout = startup_timeout_s
        self._handle_signals = handle_signals
        self._postgres: EmbeddedPostgres | None = None
        self._temporal: EmbeddedTemporal | None = None
        self._saved_handlers: dict[int, SignalHandler] = {}
        self._loop_signals: list[int] = []
        self.addresses: StackAddresses | None = None

    # ---- sync ---------------------------------------------------------------------------------
    def __enter__(self) -> StackAddresses:
        self._install_handlers()
        try:
            return self.start()
        except BaseException:
            self._restore_handlers()
            raise

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        try:
            self.stop()
        finally:
            self._restore_handlers()

    # ---- async --------------------------------------------------------------------------------
    async def __aenter__(self) -> StackAddresses:
        addresses = self.__enter__()
        self._restore_handlers()
        task = asyncio.current_task()
        if self._handle_signals and _in_main_thread() and task is not None:
            loop = asyncio.get_running_loop()
            for signum in _TERMINATING:
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.add_signal_handler(signum, task.cancel)
                    self._loop_signals.append(signum)
        return addresses

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        loop = asyncio.get_running_loop()
        for signum in self._loop_signals:
            loop.remove_signal_handler(signum)
        self._loop_signals.clear()
        self.stop()

    # ---- the work ------------------------------------------------------------------------------
    def start(self) -> StackAddresses:
        """Start what is missing, migrate, and return the addresses; on any failure stop what started."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> StackAddresses:
        settings = self._settings or load_settings()
        database_url = settings.database_url
        temporal_address = settings.temporal_address if self._want_temporal else None
        embed_pg = database_url is None
        embed_temporal = self._want_temporal and temporal_address is None
        data_dir = Path(settings.data_dir).expanduser().absolute()
        ui_url: str | None = None
        namespace = settings.temporal_namespace

        if embed_pg or embed_temporal:
            data_dir = ensure_data_dir(data_dir)
            with data_dir_lock(data_dir):
                # Temporal first: its port check is instant, PostgreSQL's first start takes seconds.
                if embed_temporal:
                    self._temporal = start_temporal(
                        data_dir,
                        port=settings.temporal_port,
                        ui_port=settings.temporal_ui_port,
                        namespace=namespace,
                        extra_args=self._temporal_args,
                        timeout_s=self._timeout,
                        store=self._temporal_store,
                    )
                    temporal_address, ui_url = self._temporal.address, self._temporal.ui_url
                    namespace = self._temporal.namespace
                if embed_pg:
                    self._postgres = start_postgres(data_dir)
                    database_url = self._postgres.url
        assert database_url is not None
        if self._migrate:
            migrate_database(database_url)
        self.addresses = StackAddresses(
            database_url=database_url,
            temporal_address=temporal_address,
            temporal_namespace=namespace,
            ui_url=ui_url,
            data_dir=data_dir,
            postgres_embedded=embed_pg,
            temporal_embedded=embed_temporal,
        )
        return self.addresses

    def stop(self) -> None:
        """Stop what this stack started (Temporal, then PostgreSQL); safe to call twice."""
        with _signals_deferred():
            errors: list[BaseException] = []
            for component in (self._temporal, self._postgres):
                if component is None:
                    continue
                try:
                    component.stop()
                except Exception as error:  # noqa: BLE001 - stop the other one anyway
                    errors.append(error)
            self._temporal = None
            self._postgres = None
        if errors:
            raise StackError(f"could not stop the embedded stack cleanly: {errors[0]}")

    # ---- signals -------------------------------------------------------------------------------
    def _install_handlers(self) -> None:
        if not self._handle_signals or not _in_main_thread():
            return
        for signum in _TERMINATING:
            self._saved_handlers[signum] = signal.signal(signum, _raise_interrupt)

    def _restore_handlers(self) -> None:
        for signum, handler in self._saved_handlers.items():
            if handler is not None:  # None: a handler installed outside Python, cannot be restored
                signal.signal(signum, handler)
        self._saved_handlers.clear()


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    if not _in_main_thread():
        yield
        return
    saved = {s: signal.signal(s, _ignore) for s in (signal.SIGINT, *_TERMINATING)}
    try:
        yield
    finally:
        for signum, handler in saved.items():
            if handler is not None:
                signal.signal(signum, handler)


def migrate_database(url: str) -> None:
    """Bring the schema to head; an unreachable or refusing database is one StackError line."""
    from sqlalchemy.exc import SQLAlchemyError

    from models.db import get_engine
    from models.migrate import upgrade_to_head

    try:
        upgrade_to_head(url)
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise StackError(f"cannot migrate the database at {redact_url(url)}: {reason}") from None
    finally:
        # Migrations ran over a pooled engine; drop its connections so stopping PostgreSQL is quick.
        with contextlib.suppress(Exception):
            get_engine(url).dispose()
