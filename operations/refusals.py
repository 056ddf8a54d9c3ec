"""The one refusal every command and query raises: it names the field and says why, and nothing
was written. The API maps `kind` to its status (422, 409, 404, 503); the CLI prints the API's message."""

from __future__ import annotations

from typing import Literal

RefusalKind = Literal["refused", "conflict", "not_found", "unavailable"]


class Refusal(ValueError):
    """A command or query refused; `field` names what is wrong, `reason` says why."""

    def __init__(self, field: str, reason: str, *, kind: RefusalKind = "refused") -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
        self.kind: RefusalKind = kind


def conflict(field: str, reason: str) -> Refusal:
    """The request collides with the current state (a retired plan, a duplicate)."""
    return Refusal(field, reason, kind="conflict")


def not_found(field: str, reason: str) -> Refusal:
    return Refusal(field, reason, kind="not_found")


def unavailable(field: str, reason: str) -> Refusal:
    """A service the command needs could not be asked now (the gateway); a retry may succeed."""
    return Refusal(field, reason, kind="unavailable")
