"""The `billing` command line. Each group of commands lives in its own module and is added here."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="billing",
    help="Recurring billing for veterinary health plans, on Temporal and Gravity Payments.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
from cli.sandbox_cmd import sandbox; app.command()(sandbox)  # noqa: E402, E702
from cli.api_cmd import api; app.command()(api)  # noqa: E402, E702
from cli.worker_cmd import worker; app.command()(worker)  # noqa: E402, E702
from cli.demo_cmd import demo; app.command()(demo)  # noqa: E402, E702
from cli.bench_cmds import bench; app.command()(bench)  # noqa: E402, E702
from cli.bench_cmds import chaos; app.command()(chaos)  # noqa: E402, E702

from cli import stack_cmds  # noqa: E402 - commands register onto `app` above

stack_cmds.register(app)
from cli import operator_cmds; operator_cmds.register(app)  # noqa: E402, E702
from cli import payment_cmds; payment_cmds.register(app)  # noqa: E402, E702
from cli import finance_cmds; finance_cmds.register(app)  # noqa: E402, E702


def main() -> None:
    app()


if __name__ == "__main__":
    main()
