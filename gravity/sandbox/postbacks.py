"""The sandbox's postback sender: signed, retried with backoff, and misbehaving on request.

Real postbacks arrive at least once and in any order, so the sandbox can be told to deliver the next
few twice, to hold them and release them in reverse order, or to sign the next attempts with a wrong
secret. Every attempt is logged for tests (`GET /_sandbox/postbacks`). Lives on the server's event loop.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from gravity import conventions as C
from gravity.postback import sign


class Postman:
    """Delivers flat result objects to the configured URL."""

    def __init__(
        self,
        url: str | None,
        secret: str | None,
        *,
        backoff_base_s: float = C.POSTBACK_BACKOFF_BASE_SECONDS,
        max_attempts: int = C.POSTBACK_MAX_ATTEMPTS,
    ) -> None:
        self.url = url
        self.secret = secret or ""
        self.backoff_base_s = backoff_base_s
        self.max_attempts = max_attempts
        self.hold = False
        self.held: list[dict[str, Any]] = []
        self.duplicate_next = 0
        self.bad_signature_next = 0
        self.log: list[dict[str, Any]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._http: httpx.AsyncClient | None = None

    def configure(self, **changes: Any) -> dict[str, Any]:
        for name in ("url", "secret", "hold", "duplicate_next", "bad_signature_next", "backoff_base_s", "max_attempts"):
            if changes.get(name) is not None:
                setattr(self, name, changes[name])
        if self.hold is False and self.held:
            self.release("fifo")
        return self.describe()

    def describe(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "secret_set": bool(self.secret),
            "hold": self.hold,
            "held": len(self.held),
            "duplicate_next": self.duplicate_next,
            "bad_signature_next": self.bad_signature_next,
            "in_flight": len(self._tasks),
        }

    def reset(self) -> None:
        self.hold = False
        self.held.clear()
        self.duplicate_next = 0
        self.bad_signature_next = 0
        self.log.clear()
        for task in list(self._tasks):
            task.cancel()

    def send(self, payloads: list[dict[str, Any]]) -> None:
        """Queue results for delivery (must be called on the server's event loop)."""
        for payload in payloads:
            copies = 1
            if self.duplicate_next > 0:
                self.duplicate_next -= 1
                copies = 2
            for _ in range(copies):
                if self.hold:
                    self.held.append(payload)
                else:
                    self._spawn(self._deliver(payload))

    def release(self, order: str = "reverse") -> int:
        """Deliver every held postback, one after another, in reverse (out of order) or FIFO order."""
        batch = list(reversed(self.held)) if order == "reverse" else list(self.held)
        self.held.clear()
        self.hold = False

        async def one_by_one() -> None:
            for payload in batch:
                await self._deliver(payload)

        if batch:
            self._spawn(one_by_one())
        return len(batch)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, payload: dict[str, Any]) -> None:
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        external_id = payload.get("externalTransactionId")
        for attempt in range(1, self.max_attempts + 1):
            if not self.url:
                self.log.append({"external_transaction_id": external_id, "attempt": attempt, "status": None, "error": "no postback url"})
                return
            bad = self.bad_signature_next > 0
            if bad:
                self.bad_signature_next -= 1
            signature = sign(body, ("not-" + self.secret) if bad else self.secret)
            entry: dict[str, Any] = {"external_transaction_id": external_id, "attempt": attempt, "bad_signature": bad}
            try:
                if self._http is None:
                    self._http = httpx.AsyncClient(timeout=httpx.Timeout(5.0))
                answer = await self._http.post(
                    self.url,
                    content=body,
                    headers={"content-type": "application/json", C.POSTBACK_SIGNATURE_HEADER: signature},
                )
                entry["status"] = answer.status_code
            except httpx.HTTPError as error:
                entry.update(status=None, error=type(error).__name__)
            self.log.append(entry)
            if entry["status"] is not None and 200 <= entry["status"] < 300:
                return
            if attempt < self.max_attempts:
                await asyncio.sleep(min(C.POSTBACK_BACKOFF_CAP_SECONDS, self.backoff_base_s * 2 ** (attempt - 1)))

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()
            self._http = None
