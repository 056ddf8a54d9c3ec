"""The control surface's customer at a terminal: present a card, press cancel, walk away; and devices on/off line."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from gravity.sandbox.errors import Handled
from gravity.sandbox.postbacks import Postman
from gravity.sandbox.routers.dependencies import ControlBody, Mail, State
from gravity.sandbox.routers.routes import ControlRoute

router = APIRouter(prefix="/_sandbox/devices/{oid}/{device}", route_class=ControlRoute)


@router.post("")
async def set_device(oid: str, device: str, data: ControlBody, state: State) -> dict[str, Any]:
    """Add a device to a merchant, or take it off or on line."""
    return state.terminals.set_device(oid, device, bool(data.get("online", True)))


@router.post("/present")
async def present(oid: str, device: str, data: ControlBody, state: State, postman: Mail) -> dict[str, Any]:
    approved = data.get("approved_cents")
    handled = state.terminals.present_card(
        oid,
        device,
        outcome=data.get("outcome"),
        card_number=data.get("card_number"),
        expiry_mmyy=data.get("expiry_mmyy"),
        reason=data.get("reason"),
        approved_cents=int(approved) if approved is not None else None,
        entry_method=data.get("entry_method"),
        tip_cents=data.get("tip_cents"),
        surcharge_cents=data.get("surcharge_cents"),
    )
    return _posted(handled, postman)


@router.post("/cancel")
async def cancel(oid: str, device: str, state: State, postman: Mail) -> dict[str, Any]:
    return _posted(state.terminals.cancel_on_device(oid, device), postman)


@router.post("/walk_away")
async def walk_away(oid: str, device: str, state: State, postman: Mail) -> dict[str, Any]:
    return _posted(state.terminals.walk_away(oid, device), postman)


def _posted(handled: Handled, postman: Postman) -> dict[str, Any]:
    """The answer, once its postbacks are on their way."""
    _, answer, postbacks = handled
    if postbacks:
        postman.send(postbacks)
    return answer
