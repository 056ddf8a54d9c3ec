"""Location reach: a token sees only the things of the locations it reaches, and anything else
answers exactly as an unknown id does (404 in a path, the route's own "unknown" refusal in a body),
so a token cannot even learn that another location's ids exist."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlmodel import Session

from api.errors import forbidden, not_found, refused
from foundation.scopes import Caller
from models.clinic import Client, Location, Pet
from operations.audit import workflow_location

T = TypeVar("T")


def location_of(session: Session, thing: Any) -> str | None:
    """The location a stored thing belongs to (None: every location, as a plan offered everywhere)."""
    if isinstance(thing, Location):
        return thing.id
    if isinstance(thing, Pet):
        owner = session.get(Client, thing.client_id)
        return owner.location_id if owner is not None else None
    return thing.location_id  # type: ignore[no-any-return]


def load_reached(session: Session, caller: Caller, model: type[T], object_id: str, field: str, what: str) -> T:
    """The `model` row `object_id`, or the 404 of an unknown id when it is missing or out of reach."""
    thing = session.get(model, object_id)
    if thing is None or not caller.reaches(location_of(session, thing)):
        raise not_found(field, f"unknown {what} {object_id}")
    return thing


def require_reached(caller: Caller, location_id: str | None, field: str, what: str, object_id: str) -> None:
    """404 as for an unknown id when `location_id` (already looked up) is out of reach."""
    if caller.reach is not None and (location_id is None or location_id not in caller.reach):
        raise not_found(field, f"unknown {what} {object_id}")


def movement_reached(session: Session, caller: Caller, workflow_id: str, location_id: str | None, field: str, what: str, object_id: str) -> None:
    """A movement known by its workflow (its row may not be written yet): in reach when its row's
    location or, failing that, the location its start recorded is."""
    if caller.reach is None:
        return
    require_reached(caller, location_id or workflow_location(session, workflow_id), field, what, object_id)


def body_location_reached(caller: Caller, location_id: str | None, field: str = "location_id", what: str = "location") -> None:
    """A location named in a body: out of reach is refused as an unknown one is (422 "refused")."""
    if location_id is not None and not caller.reaches(location_id):
        raise refused(field, f"unknown {what} {location_id}")


def require_all_locations(caller: Caller, what: str) -> None:
    """Something for every location (a new location, a plan offered everywhere) needs a token that reaches them all."""
    if caller.reach is not None:
        raise forbidden(caller.scope, f"{what} (this token reaches only some locations)")
