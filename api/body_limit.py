"""A ceiling on request bodies, enforced while they are read, so a huge body is never held in memory.

A declared `Content-Length` above the limit is answered 413 at once, before any of the body is
read; a body sent without one (chunked) is counted as it arrives and refused the moment it passes the
limit. The server reads from the socket only as fast as the app asks, so what is never asked for is
never buffered. It is the outermost middleware: the idempotency middleware reads whole bodies.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import PayloadTooLarge, too_large


def declared_length(scope: Scope) -> int | None:
    """The request's `Content-Length`, or None when it has none (or one that is not a number)."""
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodySizeLimit:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            await too_large(self.max_bytes)(scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise PayloadTooLarge(self.max_bytes)
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, watching_send)
        except PayloadTooLarge:
            # Raised where no exception handler sees it (the idempotency middleware reading ahead).
            if started:
                raise
            await too_large(self.max_bytes)(scope, receive, send)
