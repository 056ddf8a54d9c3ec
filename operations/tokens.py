"""API tokens the operator makes, lists and revokes, and the check of a presented token.

A token reads `vbt_<id>_<secret>`: the id finds its row, and the SHA-256 of the secret is compared
in constant time with the stored hash. The secret is made from 32 random bytes, shown once by
`create_token` and never stored, logged or put in an error.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from foundation.scopes import SETTINGS_TOKEN_NAME, Caller, Scope
from models.access import ApiToken
from models.clinic import Location
from models.db import session_scope

PREFIX = "vbt_"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
_ID = re.compile(r"^[0-9a-f]{16}$")
#: `last_used_at` is written at most this often per token, so reading costs no write per request.
LAST_USED_EVERY = timedelta(minutes=1)


class TokenRefused(ValueError):
    """A token that cannot be made or revoked as asked; the message names the field. Nothing changed."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class TokenInfo:
    """A token as `billing token list` shows it: never its secret or hash."""

    name: str
    scope: str
    locations: list[str] | None  # None: every location
    created_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(engine: Engine, *, name: str, scope: str, locations: list[str] | None) -> str:
    """Store a new token (its hash) and return the whole token, which is shown this once.
    `locations` None reaches every location; otherwise each must exist."""
    if not NAME.match(name):
        raise TokenRefused("name", "use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    if name == SETTINGS_TOKEN_NAME:
        raise TokenRefused("name", f"{SETTINGS_TOKEN_NAME} is the name of BILLING_API_TOKEN")
    try:
        chosen = Scope(scope)
    except ValueError:
        raise TokenRefused("scope", f"must be one of {', '.join(s.value for s in Scope)}") from None
    if locations is not None and not locations:
        raise TokenRefused("location", "name at least one location, or choose every location")
    token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    try:
        with session_scope(engine) as session:
            for location_id in locations or []:
                if session.get(Location, location_id) is None:
                    raise TokenRefused("location", f"unknown location {location_id}")
            session.add(
                ApiToken(
                    id=token_id,
                    name=name,
                    scope=chosen.value,
                    all_locations=locations is None,
                    location_ids=sorted(set(locations or [])),
                    secret_sha256=secret_hash(secret),
                )
            )
    except IntegrityError:
        raise TokenRefused("name", f"a token named {name} already exists") from None
    return f"{PREFIX}{token_id}_{secret}"


def list_tokens(engine: Engine) -> list[TokenInfo]:
    with Session(engine) as session:
        rows = session.exec(select(ApiToken).order_by(ApiToken.name))
        return [
            TokenInfo(row.name, row.scope, None if row.all_locations else list(row.location_ids), row.created_at, row.revoked_at, row.last_used_at)
            for row in rows
        ]


def revoke_token(engine: Engine, name: str) -> bool:
    """Revoke the token named `name`: False when it was already revoked. Unknown: `TokenRefused`."""
    with session_scope(engine) as session:
        row = session.exec(select(ApiToken).where(ApiToken.name == name)).first()
        if row is None:
            raise TokenRefused("name", f"unknown token {name}")
        if row.revoked_at is not None:
            return False
        row.revoked_at = func.now()  # type: ignore[assignment]
        session.add(row)
    return True


def settings_caller() -> Caller:
    """BILLING_API_TOKEN: the billing scope over every location."""
    return Caller(SETTINGS_TOKEN_NAME, Scope.BILLING, None)


def parse(presented: str) -> tuple[str, str] | None:
    """(token id, secret) of a `vbt_<id>_<secret>` token, or None when it has not that shape."""
    if not presented.startswith(PREFIX):
        return None
    token_id, sep, secret = presented[len(PREFIX) :].partition("_")
    if not sep or not _ID.match(token_id) or not secret:
        return None
    return token_id, secret


def authenticate(engine: Engine, presented: str) -> Caller | None:
    """The caller a presented token stands for, or None (unknown, wrong secret or revoked)."""
    parsed = parse(presented)
    if parsed is None:
        return None
    token_id, secret = parsed
    with Session(engine) as session:
        row = session.get(ApiToken, token_id)
        expected = row.secret_sha256 if row is not None else secret_hash("absent")
        if not hmac.compare_digest(secret_hash(secret), expected) or row is None or row.revoked_at is not None:
            return None
        caller = Caller(row.name, Scope(row.scope), None if row.all_locations else frozenset(row.location_ids))
        session.execute(
            update(ApiToken)
            .where(
                ApiToken.id == token_id,  # type: ignore[arg-type]
                (ApiToken.last_used_at.is_(None)) | (ApiToken.last_used_at < func.now() - LAST_USED_EVERY),  # type: ignore[union-attr, operator]
            )
            .values(last_used_at=func.now())
        )
        session.commit()
    return caller
