"""The one error the embedded-stack launcher raises for problems a person can fix."""

from __future__ import annotations


class StackError(Exception):
    """A problem starting or stopping the embedded stack, said in one line with what to do.

    `detail` optionally carries supporting text (for example the tail of a server log) that the
    CLI shows below the line; the line itself must make sense alone.
    """

    def __init__(self, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def __str__(self) -> str:
        return self.message
