"""The route classes of the sandbox's routers, keeping the answers a plain Starlette route gave."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Depends
from fastapi.routing import APIRoute
from starlette.responses import JSONResponse, Response

from gravity.sandbox.errors import ApiError
from gravity.sandbox.pipeline import error_response
from gravity.sandbox.routers.dependencies import control_body


class SandboxRoute(APIRoute):
    """An APIRoute that answers HEAD wherever it answers GET, as a Starlette route does."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        if self.methods and "GET" in self.methods:
            self.methods.add("HEAD")


class ControlRoute(SandboxRoute):
    """A `/_sandbox/` route: the body must be a JSON object, and the endpoint's answer is sent as JSON.

    A control request a test got wrong (a missing key, a value of the wrong type) is a 400 that
    names the problem, so the test's author sees it rather than a bare 500.
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        kwargs["response_model"] = None
        kwargs["dependencies"] = [Depends(control_body), *(kwargs.get("dependencies") or [])]
        super().__init__(path, _answered(endpoint), **kwargs)


def _answered(endpoint: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Response]]:
    @functools.wraps(endpoint)
    async def answer(*args: Any, **kwargs: Any) -> Response:
        try:
            return JSONResponse(await endpoint(*args, **kwargs))
        except ApiError as error:
            return error_response(error)
        except (KeyError, TypeError, ValueError) as error:
            return error_response(ApiError(400, f"bad control request: {error}"))

    return answer
