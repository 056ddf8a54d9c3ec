"""The emergepay client: one instance per location credential (base URL, OID, bearer token).

Async on one `httpx.AsyncClient` (connection reuse, explicit timeouts). Amounts are integer cents in
and out; `foundation.money` converts at the wire. Every write carries `idempotency-key` equal to its
externalTransactionId, and the body is serialised deterministically so a retry is byte-identical.

Outcomes, in the terms of the design: a decline is a returned `TransactionResult`; a permanent error
(400, 401/403, 404) or a transient one (409, 429, 5xx, no connection) is raised (`gravity.errors`);
and when a request was sent but no answer came back, `UnknownOutcome` is raised. The `*_safely`
methods then look the external id up before anything is sent again, so a lost answer can never turn
into a second charge; an id Gravity calls already used that the lookup cannot find is `UnknownOutcome`
too (it may have been processed), never a permanent failure.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from datetime import datetime
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from foundation.money import MoneyError, to_dollar_string
from foundation.telemetry import current_telemetry
from gravity import conventions as C
from gravity.errors import (
    BadCredentials,
    BadRequest,
    ConnectionFailed,
    DeviceBusy,
    ExternalIdReused,
    IdempotencyConflict,
    NotFound,
    PermanentGravityError,
    RateLimited,
    ReadInterrupted,
    RefundExceedsRemaining,
    ServerError,
    TransientGravityError,
    UnknownOutcome,
    VoidNotPossible,
    scrub,
)
from gravity.results import BulkSale, Device, TransactionResult, parse_transaction

__all__ = ["GravityClient"]


# The time the caller lives in (an activity sets it to its workflow's time). Only a client built
# with `tell_sandbox_time` sends it, to the sandbox, which then dates its transactions by it: the
# demo's simulated year. Never for a real Gravity, which keeps its own clock.
CALLER_TIME: ContextVar[datetime | None] = ContextVar("caller_time", default=None)
SANDBOX_CLOCK_HEADER = "X-Sandbox-Clock"


class GravityClient:
    """Talks to emergepay (or the sandbox) for one merchant OID."""

    def __init__(
        self,
        base_url: str,
        oid: str,
        token: str,
        *,
        timeout: float = 15.0,
        connect_timeout: float | None = None,
        safe_lookup_attempts: int = C.SAFE_LOOKUP_ATTEMPTS,
        safe_lookup_backoff_s: float = C.SAFE_LOOKUP_BACKOFF_SECONDS,
        max_connections: int = 20,
        tell_sandbox_time: bool = False,
    ) -> None:
        if not oid or not token:
            raise ValueError("a Gravity client needs an OID and a token")
        self.base_url = base_url.rstrip("/")
        self.oid = oid
        self._token = token
        self._safe_attempts = max(1, safe_lookup_attempts)
        self._safe_backoff = safe_lookup_backoff_s
        self._timeout = timeout
        self._tell_time = tell_sandbox_time
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout, connect=connect_timeout if connect_timeout is not None else min(timeout, 10.0)),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "User-Agent": "vet-billing/0.1 (+emergepay client)",
            },
        )
        # A client span per request when telemetry is on: method, URL (OID and external id only)
        # and status; never headers or bodies, so the token and card data stay out of traces.
        current_telemetry().instrument_httpx(self._http)

    def __repr__(self) -> str:  # the token must never appear
        return f"GravityClient(base_url={self.base_url!r}, oid={self.oid!r})"

    async def __aenter__(self) -> GravityClient:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close pooled connections."""
        await self._http.aclose()

    # --- transport ---------------------------------------------------------------------------------
    def _path(self, template: str, **parts: str) -> str:
        return template.format(oid=quote(self.oid, safe=""), **{k: quote(v, safe="") for k, v in parts.items()})

    async def _send(
        self,
        method: str,
        path: str,
        endpoint: str,
        *,
        body: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        read_only: bool = False,
        external_id: str | None = None,
        secrets: Sequence[str | None] = (),
    ) -> httpx.Response:
        """Send one request; map transport failures to transient / unknown-outcome errors."""
        headers = {}
        content = None
        if body is not None:
            content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if idempotency_key:
            headers["idempotency-key"] = idempotency_key
        if self._tell_time and (caller_time := CALLER_TIME.get()) is not None:
            headers[SANDBOX_CLOCK_HEADER] = caller_time.isoformat()
        hidden = (self._token, *secrets)
        try:
            return await self._http.request(method, path, content=content, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
            # Nothing left this machine: safe to retry with the same external id.
            raise ConnectionFailed(scrub(f"{endpoint}: could not connect to Gravity ({type(error).__name__})", *hidden), endpoint=endpoint) from None
        except httpx.UnsupportedProtocol:
            raise PermanentGravityError(f"{endpoint}: the Gravity base URL is not http(s)", endpoint=endpoint) from None
        except httpx.HTTPError as error:
            what = scrub(f"{endpoint}: no answer from Gravity after sending ({type(error).__name__})", *hidden)
            if read_only:
                raise ReadInterrupted(what, endpoint=endpoint) from None
            raise UnknownOutcome(what, external_id=external_id, endpoint=endpoint) from None

    def _raise_for_status(self, response: httpx.Response, endpoint: str, secrets: Sequence[str | None] = ()) -> None:
        """Raise the error class for a non-2xx answer (with the server's message, scrubbed)."""
        status = response.status_code
        if status < 400:
            return
        message = _server_message(response)
        text = scrub(f"{endpoint}: HTTP {status}: {message}", self._token, *secrets)
        kw: dict[str, Any] = {"status": status, "endpoint": endpoint}
        if status == 400:
            if C.is_message(message, C.REUSED_EXTERNAL_ID_MESSAGE):
                raise ExternalIdReused(text, **kw)
            if C.is_message(message, C.REFUND_EXCEEDS_REMAINING_MESSAGE):
                raise RefundExceedsRemaining(text, **kw)
            if any(
                C.is_message(message, m)
                for m in (
                    C.VOID_AFTER_SETTLEMENT_MESSAGE,
                    C.ALREADY_VOIDED_MESSAGE,
                    C.VOID_WITH_REFUNDS_MESSAGE,
                )
            ):
                raise VoidNotPossible(text, **kw)
            raise BadRequest(text, **kw)
        if status in (401, 403):
            raise BadCredentials(text, **kw)
        if status == 404:
            raise NotFound(text, **kw)
        if status == 409:
            if any(C.is_message(message, m) for m in (C.DEVICE_BUSY_MESSAGE, C.DEVICE_OFFLINE_MESSAGE)):
                raise DeviceBusy(text, **kw)
            raise IdempotencyConflict(text, **kw)
        if status == 429:
            raise RateLimited(text, retry_after=_retry_after(response), **kw)
        if status >= 500:
            raise ServerError(text, **kw)
        raise PermanentGravityError(text, **kw)

    def _transaction(self, response: httpx.Response, endpoint: str, external_id: str | None, *, read_only: bool = False) -> TransactionResult:
        """A 2xx `{"transactionResponse": {...}}` as a result. An unreadable 2xx on a write is an
        unknown outcome (it may have been processed), on a read a transient failure."""
        try:
            data = response.json()
            return parse_transaction(data["transactionResponse"])
        except (ValueError, KeyError, TypeError, MoneyError) as error:
            what = f"{endpoint}: unreadable answer from Gravity ({type(error).__name__})"
            if read_only:
                raise ServerError(what, status=response.status_code, endpoint=endpoint) from None
            raise UnknownOutcome(what, external_id=external_id, endpoint=endpoint) from None

    async def _write(self, path: str, endpoint: str, envelope: str, data: dict[str, Any], *, secrets: Sequence[str | None] = ()) -> TransactionResult:
        external_id = data["externalTransactionId"]
        response = await self._send(
            "PUT",
            path,
            endpoint,
            body={envelope: data},
            idempotency_key=external_id,
            external_id=external_id,
            secrets=secrets,
        )
        self._raise_for_status(response, endpoint, secrets)
        return self._transaction(response, endpoint, external_id)

    # --- card-not-present calls ----------------------------------------------------------------------
    async def charge_saved_card(
        self,
        *,
        card_ref: str,
        amount_cents: int,
        external_id: str,
        reference: str | None = None,
        billing_name: str | None = None,
        cashier_id: str | None = None,
    ) -> TransactionResult:
        """Charge a saved card (its token is an earlier approved uniqueTransId). A decline is a result."""
        data = _drop_none(
            {
                "uniqueTransId": card_ref,
                "amount": to_dollar_string(amount_cents),
                "externalTransactionId": external_id,
                "transactionReference": reference,
                "billingName": billing_name,
                "cashierId": cashier_id,
            }
        )
        return await self._write(self._path("/orgs/{oid}/transactions/tokenizedPayment"), "tokenizedPayment", "transactionData", data)

    async def refund(self, *, unique_trans_id: str, amount_cents: int, external_id: str) -> TransactionResult:
        """Refund all or part of a sale (`RefundExceedsRemaining` if above what is left)."""
        data = {"uniqueTransId": unique_trans_id, "amount": to_dollar_string(amount_cents), "externalTransactionId": external_id}
        return await self._write(self._path("/orgs/{oid}/transactions/tokenizedRefund"), "tokenizedRefund", "transactionData", data)

    async def void(self, *, unique_trans_id: str, external_id: str) -> TransactionResult:
        """Void an unsettled sale. Past the void window Gravity answers with a refund
        (transaction_type CreditReturn); after settlement `VoidNotPossible` is raised: refund instead."""
        data = {"uniqueTransId": unique_trans_id, "externalTransactionId": external_id}
        return await self._write(self._path("/orgs/{oid}/transactions/void"), "void", "transactionData", data)

    async def lookup(self, external_id: str) -> TransactionResult | None:
        """The transaction with this external id, or None if Gravity does not (yet) know it."""
        endpoint = "lookup"
        response = await self._send("GET", self._path("/orgs/{oid}/transactions/{e}", e=external_id), endpoint, read_only=True)
        if response.status_code == 404 and not C.is_message(_server_message(response), C.UNKNOWN_OID_MESSAGE):
            return None
        self._raise_for_status(response, endpoint)
        return self._transaction(response, endpoint, external_id, read_only=True)

    async def tokenize(
        self,
        *,
        card_number: str,
        exp_mmyy: str,
        external_id: str,
        security_code: str | None = None,
        billing_name: str | None = None,
        postal_code: str | None = None,
    ) -> TransactionResult:
        """Save a card without charging it; the result's `card_ref` is the token to store.

        The card number and security code go to Gravity only: never into a message or a log."""
        data = _drop_none(
            {
                "cardNumber": card_number,
                "cardExpirationDate": exp_mmyy,
                "externalTransactionId": external_id,
                "cardSecurityCode": security_code,
                "billingName": billing_name,
                "billingPostalCode": postal_code,
            }
        )
        return await self._write(
            self._path("/orgs/{oid}/transactions/tokenize"),
            "tokenize",
            "accountData",
            data,
            secrets=(card_number, security_code),
        )

    async def bulk_sale(self, requests: Sequence[BulkSale], *, idempotency_key: str | None = None) -> int:
        """Submit up to 1000 card-on-file sales; results come only by postback. Returns how many
        were accepted. The default idempotency key is derived from the external ids, so a retry of
        the same run is recognised."""
        if not requests:
            return 0
        if len(requests) > C.BULK_MAX_REQUESTS:
            raise ValueError(f"at most {C.BULK_MAX_REQUESTS} sales per bulk call")
        items = [
            {
                "transactionType": "CreditSale",
                "transactionData": _drop_none(
                    {
                        "uniqueTransId": r.card_ref,
                        "amount": to_dollar_string(r.amount_cents),
                        "externalTransactionId": r.external_id,
                        "transactionReference": r.reference,
                        "billingName": r.billing_name,
                    }
                ),
            }
            for r in requests
        ]
        key = idempotency_key or "bulk-" + hashlib.sha256("\n".join(r.external_id for r in requests).encode()).hexdigest()[:32]
        endpoint = "bulk"
        response = await self._send(
            "POST",
            self._path("/orgs/{oid}/transactions/tokenized/bulk"),
            endpoint,
            body={"requests": items},
            idempotency_key=key,
            external_id=key,
        )
        self._raise_for_status(response, endpoint)
        try:
            return int(response.json().get("accepted", len(items)))
        except (ValueError, AttributeError):
            return len(items)

    # --- terminal adapter ([ours] until Gravity documents the device call) ----------------------------
    async def start_terminal(
        self,
        *,
        device_name: str,
        external_id: str,
        amount_cents: int,
        transaction_type: str = "CreditSale",
        reference: str | None = None,
        save_card: bool = False,
    ) -> None:
        """Push a sale (or return) to a named terminal; the result arrives by postback or lookup."""
        if transaction_type not in C.TERMINAL_TRANSACTION_TYPES:
            raise ValueError(f"transaction_type must be one of {C.TERMINAL_TRANSACTION_TYPES}")
        endpoint = "deviceStart"
        data = _drop_none(
            {
                "externalTransactionId": external_id,
                "amount": to_dollar_string(amount_cents),
                "transactionType": transaction_type,
                "transactionReference": reference,
                "saveCard": save_card,
            }
        )
        response = await self._send(
            "POST",
            self._path(C.TERMINAL_START_PATH, device=device_name),
            endpoint,
            body={"transactionData": data},
            idempotency_key=external_id,
            external_id=external_id,
        )
        self._raise_for_status(response, endpoint)

    async def cancel_terminal(self, *, device_name: str, external_id: str) -> bool:
        """Cancel a terminal transaction: True if cancelled (or it had ended without a result),
        False if the customer already completed it (look it up: a late approval must be voided)."""
        endpoint = "deviceCancel"
        response = await self._send(
            "DELETE",
            self._path(C.TERMINAL_CANCEL_PATH, device=device_name, external_id=external_id),
            endpoint,
            read_only=True,  # cancelling twice is harmless
        )
        if response.status_code == 409 and C.is_message(_server_message(response), C.TERMINAL_ALREADY_COMPLETED_MESSAGE):
            return False
        self._raise_for_status(response, endpoint)
        return True

    async def list_devices(self) -> list[Device]:
        """The location's terminals, whether each is online and busy."""
        endpoint = "devices"
        response = await self._send("GET", self._path(C.DEVICES_PATH), endpoint, read_only=True)
        self._raise_for_status(response, endpoint)
        try:
            return [Device(name=str(d["deviceName"]), online=_flag(d.get("online")), busy=_flag(d.get("busy"))) for d in response.json()["devices"]]
        except (ValueError, KeyError, TypeError):
            raise ServerError(f"{endpoint}: unreadable answer from Gravity", status=response.status_code, endpoint=endpoint) from None

    # --- the safe path for unknown outcomes ------------------------------------------------------------
    async def find(self, external_id: str, *, attempts: int | None = None) -> TransactionResult | None:
        """Look an id up, retrying a few times with short backoff on 404 and transient failures
        (a slow request may still be committing). None if it never shows up."""
        delay = self._safe_backoff
        tries = attempts or self._safe_attempts
        for attempt in range(1, tries + 1):
            try:
                found = await self.lookup(external_id)
                if found is not None:
                    return found
            except TransientGravityError:
                if attempt == tries:
                    raise
            if attempt < tries:
                await asyncio.sleep(delay)
                delay *= 2
        return None

    async def _safely(self, send: Callable[[], Awaitable[TransactionResult]], external_id: str, look_up_first: bool) -> TransactionResult:
        if look_up_first:
            found = await self.lookup(external_id)
            if found is not None:
                return found
        try:
            return await send()
        except UnknownOutcome:
            why = "no answer"
        except ExternalIdReused:
            # Sent before (its answer was lost, or its idempotency key expired): the id is the truth.
            why = "the id is already used"
        except IdempotencyConflict:
            # The first request with this key is still running (its sender died mid-call): wait for
            # its answer by the id, as long as a request of ours may run, rather than fail this try.
            return await self._resolve(external_id, "the first request is still running", attempts=self._lookups_covering(self._timeout))
        return await self._resolve(external_id, why)

    def _lookups_covering(self, seconds: float) -> int:
        """How many `find` tries, with their doubling backoff, wait at least `seconds` in all."""
        tries, waited, delay = 1, 0.0, self._safe_backoff
        while waited < seconds and delay > 0:
            waited += delay
            delay *= 2
            tries += 1
        return max(tries, self._safe_attempts)

    async def _resolve(self, external_id: str, why: str, *, attempts: int | None = None) -> TransactionResult:
        """What a write that may have been processed did. While the lookup cannot say, the outcome
        is unknown, never failed: the caller must retry with the same id, not mark it or pick another."""
        try:
            found = await self.find(external_id, attempts=attempts)
        except TransientGravityError as error:
            raise UnknownOutcome(
                f"{why} for {external_id} and its lookup failed ({error.message}): retry with the same external id",
                external_id=external_id,
                endpoint=error.endpoint,
            ) from None
        if found is not None:
            return found
        raise UnknownOutcome(
            f"{why} for {external_id} and Gravity does not know it yet: retry with the same external id",
            external_id=external_id,
        )

    async def charge_saved_card_safely(
        self,
        *,
        card_ref: str,
        amount_cents: int,
        external_id: str,
        reference: str | None = None,
        billing_name: str | None = None,
        cashier_id: str | None = None,
        look_up_first: bool = False,
    ) -> TransactionResult:
        """`charge_saved_card`, but a lost answer is resolved by looking the id up, never by
        charging again. Pass `look_up_first=True` on every retry of an attempt (e.g. a Temporal
        activity's attempt > 1). Still unknown after the lookups: `UnknownOutcome` again."""
        return await self._safely(
            lambda: self.charge_saved_card(
                card_ref=card_ref,
                amount_cents=amount_cents,
                external_id=external_id,
                reference=reference,
                billing_name=billing_name,
                cashier_id=cashier_id,
            ),
            external_id,
            look_up_first,
        )

    async def refund_safely(self, *, unique_trans_id: str, amount_cents: int, external_id: str, look_up_first: bool = False) -> TransactionResult:
        """`refund` with the same lookup-before-resend rule as `charge_saved_card_safely`."""
        return await self._safely(
            lambda: self.refund(unique_trans_id=unique_trans_id, amount_cents=amount_cents, external_id=external_id),
            external_id,
            look_up_first,
        )

    async def void_safely(self, *, unique_trans_id: str, external_id: str, look_up_first: bool = False) -> TransactionResult:
        """`void` with the same lookup-before-resend rule as `charge_saved_card_safely`."""
        return await self._safely(lambda: self.void(unique_trans_id=unique_trans_id, external_id=external_id), external_id, look_up_first)


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


def _flag(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).strip().casefold() == "true"


def _server_message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(data, dict):
        return str(data.get("message") or data.get("error") or "")[:500]
    return ""


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers.get("retry-after", ""))
    except ValueError:
        return None
