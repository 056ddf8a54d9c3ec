"""What a route gets from the app it runs in: the sandbox state, the postback sender and the API pipeline."""

from __future__ import annotations

import json
from typing import Annotated, Any, cast

from fastapi import Depends
from starlette.requests import Request

from gravity.sandbox.errors import ApiError
from gravity.sandbox.pipeline import ApiPipeline
from gravity.sandbox.postbacks import Postman
from gravity.sandbox.state import SandboxState


async def sandbox_state(request: Request) -> SandboxState:
    return cast(SandboxState, request.app.state.sandbox)


async def postman(request: Request) -> Postman:
    return cast(Postman, request.app.state.postman)


async def api_pipeline(request: Request) -> ApiPipeline:
    return cast(ApiPipeline, request.app.state.pipeline)


async def control_body(request: Request) -> dict[str, Any]:
    """A control request's JSON object (an empty body is `{}`); 400 for anything else."""
    raw = await request.body()
    try:
        data = json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError:
        raise ApiError(400, "body must be JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "body must be a JSON object")
    return data


State = Annotated[SandboxState, Depends(sandbox_state)]
Mail = Annotated[Postman, Depends(postman)]
Pipeline = Annotated[ApiPipeline, Depends(api_pipeline)]
ControlBody = Annotated[dict[str, Any], Depends(control_body)]
