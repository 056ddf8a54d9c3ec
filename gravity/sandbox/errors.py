"""What a gateway rule answers: an `ApiError` to refuse, or a `Handled` result to send."""

from __future__ import annotations

from typing import Any

Handled = tuple[int, dict[str, Any], list[dict[str, Any]]]  # status, JSON body, postbacks to send


class ApiError(Exception):
    """An HTTP error answer: status and a `message` for the JSON body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
