"""Turn the errors a person can fix into one red line and exit code 1, for every CLI command.

Why: a traceback for "port 7233 is in use" or "BILLING_TEMPORAL_PORT is not a number" hides the
one thing the reader needs. Use `@handles_errors` on a command, or `with cli_errors():` around a
block. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn, ParamSpec, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.text import Text

from stack.embedded import describe_bad_setting
from stack.errors import StackError

P = ParamSpec("P")
R = TypeVar("R")

err_console = Console(stderr=True, soft_wrap=True)


#: The exit code of a command given input it cannot take (typer's own code for a usage error).
BAD_INPUT = 2


def fail(message: str, detail: str | None = None, *, code: int = 1) -> NoReturn:
    """Print `message` as one red line (and optional dim detail below it), then exit with `code`."""
    err_console.print(Text(message, style="bold red"))
    if detail:
        err_console.print(Text(detail, style="dim"))
    raise typer.Exit(code=code)


@contextmanager
def cli_errors() -> Iterator[None]:
    """Report StackError and settings ValidationError as one line and exit 1."""
    try:
        yield
    except StackError as error:
        fail(error.message, error.detail)
    except ValidationError as error:
        fail(describe_bad_setting(error))


def handles_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Decorator form of `cli_errors` for typer commands (keeps the signature typer reads)."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with cli_errors():
            return command(*args, **kwargs)
        raise AssertionError("unreachable")  # pragma: no cover - cli_errors either returns or exits

    return wrapper
