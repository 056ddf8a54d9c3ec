"""The control surface's card scripts: decline, approve in part or expire a saved card's next charges."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from gravity import conventions as C
from gravity.sandbox.routers.dependencies import ControlBody, State
from gravity.sandbox.routers.routes import ControlRoute

router = APIRouter(prefix="/_sandbox/cards/{card_ref}", route_class=ControlRoute)


@router.post("/decline")
async def card_decline(card_ref: str, data: ControlBody, state: State) -> dict[str, Any]:
    reason = C.DeclineReason(data.get("reason", C.DeclineReason.GENERIC))
    count = int(data.get("count", 1))
    state.vault.script(card_ref, {"kind": "decline", "reason": reason.value, "count": count})
    return {"ok": True}


@router.post("/partial")
async def card_partial(card_ref: str, data: ControlBody, state: State) -> dict[str, Any]:
    step = {"kind": "partial", "approved_cents": int(data["approved_cents"]), "count": int(data.get("count", 1))}
    state.vault.script(card_ref, step)
    return {"ok": True}


@router.post("/expire")
async def card_expire(card_ref: str, state: State) -> dict[str, Any]:
    state.vault.script(card_ref, {"kind": "expire"})
    return {"ok": True}
