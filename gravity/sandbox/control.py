"""A small client for the sandbox's `/_sandbox/` control surface (tests and the demo; never the engine).

Synchronous on purpose: the sandbox runs in another thread or process, so a blocking call is fine
from a test or a demo script, async or not.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from gravity.client import SANDBOX_CLOCK_HEADER
from gravity.sandbox.app import BASE_PATH


class SandboxControlError(RuntimeError):
    """The control surface refused a command (status and message)."""


class SandboxControl:
    """Script declines, faults, terminals, settlement and the clock; read every transaction."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        parts = urlsplit(base_url)
        path = parts.path.rstrip("/")
        if path.endswith(BASE_PATH):
            path = path[: -len(BASE_PATH)]
        self.root_url = f"{parts.scheme}://{parts.netloc}{path}"
        self._http = httpx.Client(base_url=self.root_url, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SandboxControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, json: dict[str, Any] | None = None, *, at: datetime | None = None, **params: Any) -> dict[str, Any]:
        headers = {SANDBOX_CLOCK_HEADER: at.isoformat()} if at is not None else None
        answer = self._http.request(method, "/_sandbox" + path, json=json, params={k: v for k, v in params.items() if v is not None}, headers=headers)
        if answer.status_code >= 400:
            try:
                message = answer.json().get("message", answer.text)
            except ValueError:
                message = answer.text
            raise SandboxControlError(f"{method} /_sandbox{path}: {answer.status_code} {message}")
        body = answer.json()
        if not isinstance(body, dict):
            raise SandboxControlError(f"{method} /_sandbox{path}: expected a JSON object, got {answer.text[:200]}")
        return body

    @staticmethod
    def _seg(value: str) -> str:
        return quote(value, safe="")

    # --- general ---------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health")

    def reset(self) -> None:
        """Forget all transactions, cards, keys, faults, held postbacks and the clock offset."""
        self._call("POST", "/reset")

    def transactions(self, oid: str | None = None) -> list[dict[str, Any]]:
        """Every committed transaction (external id, type, cents and dollars, status, voided/refunded)."""
        transactions: list[dict[str, Any]] = self._call("GET", "/transactions", oid=oid)["transactions"]
        return transactions

    # --- saved cards -----------------------------------------------------------------------------
    def decline_next(self, card_ref: str, reason: str = "generic", count: int = 1) -> None:
        """Decline the card's next `count` charges with `reason` (a DeclineReason value)."""
        self._call("POST", f"/cards/{self._seg(card_ref)}/decline", {"reason": str(reason), "count": count})

    def partial_next(self, card_ref: str, approved_cents: int, count: int = 1) -> None:
        """Approve only `approved_cents` of the card's next `count` charges."""
        self._call("POST", f"/cards/{self._seg(card_ref)}/partial", {"approved_cents": approved_cents, "count": count})

    def expire_card(self, card_ref: str) -> None:
        """From now on every charge of the card declines "Expired Card"."""
        self._call("POST", f"/cards/{self._seg(card_ref)}/expire")

    # --- faults ----------------------------------------------------------------------------------
    def inject_fault(self, endpoint: str, kind: str, count: int = 1, *, delay_s: float | None = None, oid: str | None = None) -> None:
        """The next `count` calls of `endpoint` fail with `kind`: "500", "429", "slow", "lost", or
        "404" (lookup only: "not found" for a transaction that exists, like a lagging index)."""
        self._call("POST", "/faults", {"endpoint": endpoint, "kind": str(kind), "count": count, "delay_s": delay_s, "oid": oid})

    def faults(self) -> list[dict[str, Any]]:
        faults: list[dict[str, Any]] = self._call("GET", "/faults")["faults"]
        return faults

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    # --- terminals -------------------------------------------------------------------------------
    def present_card(
        self,
        oid: str,
        device: str,
        outcome: str | None = None,
        *,
        card_number: str | None = None,
        reason: str | None = None,
        approved_cents: int | None = None,
        expiry_mmyy: str | None = None,
        entry_method: str | None = None,
        tip_cents: int | None = None,
        surcharge_cents: int | None = None,
        at: datetime | None = None,
    ) -> dict[str, Any]:
        """The customer presents a card: outcome "approve" (default: by card number), "decline" or "partial".

        `tip_cents` and `surcharge_cents` make an approved sale take more than was asked; `at` dates
        the sale (the demo's simulated day), else the sandbox's clock does."""
        body = {
            "outcome": outcome,
            "card_number": card_number,
            "reason": reason,
            "approved_cents": approved_cents,
            "expiry_mmyy": expiry_mmyy,
            "entry_method": entry_method,
            "tip_cents": tip_cents,
            "surcharge_cents": surcharge_cents,
        }
        return self._call("POST", f"/devices/{self._seg(oid)}/{self._seg(device)}/present", body, at=at)

    def cancel_on_device(self, oid: str, device: str) -> dict[str, Any]:
        return self._call("POST", f"/devices/{self._seg(oid)}/{self._seg(device)}/cancel")

    def walk_away(self, oid: str, device: str) -> dict[str, Any]:
        return self._call("POST", f"/devices/{self._seg(oid)}/{self._seg(device)}/walk_away")

    def set_device(self, oid: str, device: str, *, online: bool = True) -> dict[str, Any]:
        """Add a device to a location, or take it off/on line."""
        return self._call("POST", f"/devices/{self._seg(oid)}/{self._seg(device)}", {"online": online})

    # --- settlement and clock --------------------------------------------------------------------
    def settle(self, oid: str | None = None) -> dict[str, Any]:
        """Close the open batch now (one OID or all): its sales can no longer be voided."""
        closed: dict[str, Any] = self._call("POST", "/settle", {"oid": oid})["closed"]
        return closed

    def advance_clock(self, seconds: float) -> str:
        """Move the sandbox clock forward (e.g. past the 25-minute void window); returns the new now."""
        now: str = self._call("POST", "/clock", {"advance_s": seconds})["now"]
        return now

    def set_clock_offset(self, seconds: float) -> str:
        now: str = self._call("POST", "/clock", {"offset_s": seconds})["now"]
        return now

    def clock(self) -> dict[str, Any]:
        return self._call("GET", "/clock")

    # --- postbacks -------------------------------------------------------------------------------
    def configure_postbacks(
        self,
        *,
        url: str | None = None,
        secret: str | None = None,
        hold: bool | None = None,
        duplicate_next: int | None = None,
        bad_signature_next: int | None = None,
        backoff_base_s: float | None = None,
        max_attempts: int | None = None,
    ) -> dict[str, Any]:
        """Change where and how postbacks go (hold them, duplicate or mis-sign the next ones)."""
        body = {
            "url": url,
            "secret": secret,
            "hold": hold,
            "duplicate_next": duplicate_next,
            "bad_signature_next": bad_signature_next,
            "backoff_base_s": backoff_base_s,
            "max_attempts": max_attempts,
        }
        config: dict[str, Any] = self._call("POST", "/postbacks", body)["config"]
        return config

    def postbacks(self) -> dict[str, Any]:
        """{"config": ..., "deliveries": [every attempt with its status]}."""
        return self._call("GET", "/postbacks")

    def release_postbacks(self, order: str = "reverse") -> int:
        """Deliver held postbacks one by one, in "reverse" (out of order) or "fifo" order."""
        released: int = self._call("POST", "/postbacks/release", {"order": order})["released"]
        return released
