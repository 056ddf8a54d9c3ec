"""`billing worker`: run a Temporal worker for the engine (scale out by starting more).

The work is `worker.serve`, which `python worker.py` runs too; this module only names the command.
"""

from __future__ import annotations

import typer

from cli.errors import handles_errors


@handles_errors
def worker() -> None:
    """Run a worker against the configured Temporal and PostgreSQL (or start the embedded ones).

    Stops cleanly on Ctrl-C or SIGTERM: in-flight activities finish or are retried elsewhere.
    """
    from worker import serve  # on use: it loads every workflow and activity, which no other command needs

    serve()


def register(app: typer.Typer) -> None:
    """Add the worker command to the `billing` app."""
    app.command("worker")(worker)
