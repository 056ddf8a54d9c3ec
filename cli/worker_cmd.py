"""`billing worker`: run a Temporal worker for the engine (scale out by starting more).

The work is `worker.serve`, which `python worker.py` runs too; this module only names the command.
"""

from __future__ import annotations

import typer

from cli.errors import err_console, handles_errors
from stack.embedded import load_settings
from stack.gravity_config import sandbox_base_url, uses_sandbox
from stack.sandbox import sandbox_answers, sandbox_root_url


@handles_errors
def worker() -> None:
    """Run a worker against the configured Temporal and PostgreSQL (or start the embedded ones).

    Stops cleanly on Ctrl-C or SIGTERM: in-flight activities finish or are retried elsewhere.
    """
    from worker import serve  # on use: it loads every workflow and activity, which no other command needs

    warn_without_sandbox()
    serve()


def warn_without_sandbox() -> None:
    """Say so when the engine is to use the local sandbox and none answers: every charge would fail."""
    settings = load_settings()
    if not uses_sandbox(settings):
        return
    if sandbox_answers(sandbox_root_url(settings)):
        err_console.print(f"Gravity: the local sandbox at {sandbox_base_url(settings)}", style="dim")
    else:
        err_console.print(
            f"warning: no Gravity sandbox answers at {sandbox_root_url(settings)}: start `billing up` first (it runs one)",
            style="yellow",
        )


def register(app: typer.Typer) -> None:
    """Add the worker command to the `billing` app."""
    app.command("worker")(worker)
