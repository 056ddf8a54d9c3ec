"""The control surface's general routes: health, reset, and the sandbox clock."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request

from gravity.sandbox.routers.dependencies import ControlBody, Mail, State
from gravity.sandbox.routers.routes import ControlRoute

router = APIRouter(prefix="/_sandbox", route_class=ControlRoute)


@router.get("/health")
async def health(state: State) -> dict[str, Any]:
    return {"ok": True, "oids": sorted(state.merchants), "now": state.clock.now().isoformat()}


@router.post("/reset")
async def reset(state: State, postman: Mail) -> dict[str, Any]:
    state.reset()
    postman.reset()
    return {"ok": True}


@router.api_route("/clock", methods=["GET", "POST"])
async def clock(request: Request, data: ControlBody, state: State) -> dict[str, Any]:
    """Read the clock, or set its offset and then move it on (a POST may do both)."""
    if request.method == "POST":
        if "offset_s" in data:
            state.clock.set_offset(float(data["offset_s"]))
        if "advance_s" in data:
            state.clock.advance(float(data["advance_s"]))
    return {"now": state.clock.now().isoformat(), "offset_s": state.clock.offset_s}
