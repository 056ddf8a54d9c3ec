"""The `billing` command line. Each group of commands lives in its own module, which adds them
with its `register(app)`."""

from __future__ import annotations

import typer

from cli import (
    api_cmd,
    bench_cmds,
    card_cmds,
    counter_cmds,
    demo_cmd,
    dunning_cmd,
    finance_cmds,
    operator_cmds,
    operator_stack,
    payment_cmds,
    plan_cmds,
    reconcile_cmd,
    sandbox_cmd,
    stack_cmds,
    statement_cmds,
    token_cmds,
    worker_cmd,
)

app = typer.Typer(
    name="billing",
    help="Recurring billing for veterinary health plans, on Temporal and Gravity Payments.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def books(
    demo: bool = typer.Option(
        False, "--demo", help="Run the command on the last `billing demo`'s books (its database and task queue), e.g. billing --demo report."
    ),
) -> None:
    """Recurring billing for veterinary health plans, on Temporal and Gravity Payments."""
    operator_stack.use_demo_books(demo)


# The order here is the order of `billing --help`.
for commands in (
    sandbox_cmd,
    api_cmd,
    worker_cmd,
    demo_cmd,
    bench_cmds,
    stack_cmds,
    operator_cmds,
    plan_cmds,
    card_cmds,
    payment_cmds,
    counter_cmds,
    finance_cmds,
    statement_cmds,
    dunning_cmd,
    reconcile_cmd,
    token_cmds,
):
    commands.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
