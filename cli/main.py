"""The `billing` command line. Each group of commands lives in its own module and is added here."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="billing",
    help="Recurring billing for veterinary health plans, on Temporal and Gravity Payments.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
