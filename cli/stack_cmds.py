"""`billing up` and `billing migrate`: run the embedded stack, or just migrate the database."""

from __future__ import annotations

import sys
import time
from contextlib import ExitStack

import typer
from rich.console import Console
from rich.table import Table

from cli.errors import handles_errors
from foundation.settings import DEV_API_TOKEN, Settings
from stack.embedded import EmbeddedStack, StackAddresses, load_settings, redact_url
from stack.gravity_config import uses_sandbox
from stack.sandbox import LocalSandbox, local_sandbox

console = Console(soft_wrap=True, markup=False, highlight=False)


def current_revision(url: str) -> str | None:
    """The Alembic revision the database is at (None for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    from models.db import get_engine  # on use: the models load SQLAlchemy's tables, which `billing up` never needs

    engine = get_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def addresses_table(addresses: StackAddresses, sandbox: LocalSandbox | None = None) -> Table:
    table = Table(title="billing stack", show_header=True, header_style="bold")
    table.add_column("part")
    table.add_column("address", overflow="fold")
    table.add_column("source")
    table.add_row("PostgreSQL", redact_url(addresses.database_url), "embedded" if addresses.postgres_embedded else "DATABASE_URL")
    if addresses.temporal_address:
        source = "embedded dev server" if addresses.temporal_embedded else "TEMPORAL_ADDRESS"
        table.add_row("Temporal", f"{addresses.temporal_address} (namespace {addresses.temporal_namespace})", source)
    if addresses.ui_url:
        table.add_row("Temporal Web UI", addresses.ui_url, "embedded dev server")
    if sandbox is not None:
        source = f"state in {sandbox.state_file}" if sandbox.state_file else "already running"
        table.add_row("Gravity sandbox", sandbox.base_url, source)
    if addresses.postgres_embedded or addresses.temporal_embedded:
        table.add_row("data folder", str(addresses.data_dir), "BILLING_DATA_DIR")
    return table


def next_steps(settings: Settings, addresses: StackAddresses) -> list[str]:
    """What to start next, in order, and the API token to use (printed only when it is the development one)."""
    lines = ["next, each in its own terminal: billing worker, then billing api"]
    embedded = addresses.postgres_embedded or addresses.temporal_embedded  # where `billing api` accepts the development token
    if settings.api_token is None and embedded:
        lines.append(f"API token (development, BILLING_API_TOKEN unset): {DEV_API_TOKEN}")
    return lines


@handles_errors
def up() -> None:
    """Start the embedded PostgreSQL, Temporal and Gravity sandbox (what the settings leave unset), migrate, and wait.

    Ctrl-C or SIGTERM stops everything that was started.
    """
    settings = load_settings()
    try:
        with EmbeddedStack(settings) as addresses, ExitStack() as parts:
            sandbox = parts.enter_context(local_sandbox(settings)) if uses_sandbox(settings) else None
            console.print(addresses_table(addresses, sandbox))
            console.print(f"database: {redact_url(addresses.database_url)}")
            if addresses.temporal_address:
                console.print(f"temporal: {addresses.temporal_address}")
            if addresses.ui_url:
                console.print(f"web ui: {addresses.ui_url}")
            if sandbox is not None:
                console.print(f"gravity sandbox: {sandbox.base_url}")
            for line in next_steps(settings, addresses):
                console.print(line)
            console.print("ready: press Ctrl-C to stop")
            sys.stdout.flush()
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        console.print("stopped")


@handles_errors
def migrate() -> None:
    """Migrate the configured database (DATABASE_URL) or the embedded one to the newest schema."""
    settings = load_settings()
    with EmbeddedStack(settings, temporal=False) as addresses:
        revision = current_revision(addresses.database_url)
    console.print(f"database {redact_url(addresses.database_url)} is at revision {revision}")


def register(app: typer.Typer) -> None:
    """Add the stack commands to the `billing` app."""
    app.command("up")(up)
    app.command("migrate")(migrate)
