"""The merchants (OIDs) a sandbox serves and the bearer token each accepts: the API's authentication."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

from gravity import conventions as C
from gravity.sandbox.errors import ApiError


class Merchants:
    """Iterates over the OIDs in the order given; `oid in merchants` says whether one is known."""

    def __init__(self, tokens: dict[str, str]) -> None:
        self._tokens = dict(tokens)

    def __iter__(self) -> Iterator[str]:
        return iter(self._tokens)

    def __contains__(self, oid: object) -> bool:
        return oid in self._tokens

    def require(self, oid: str) -> None:
        """404 for an OID we were not given."""
        if oid not in self._tokens:
            raise ApiError(404, C.UNKNOWN_OID_MESSAGE)

    def check_auth(self, oid: str, authorization: str | None) -> None:
        """404 for an OID we were not given, 401 for a missing or wrong bearer token."""
        expected = self._tokens.get(oid)
        if expected is None:
            raise ApiError(404, C.UNKNOWN_OID_MESSAGE)
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip().encode(), expected.encode()):
            raise ApiError(401, "invalid or missing bearer token")
