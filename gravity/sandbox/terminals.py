"""Counter terminals: a sale pushed to a device waits there until the customer pays, cancels or leaves.

The API starts and cancels a session; the control surface plays the customer (present a card, press
cancel, walk away) and takes devices off and on line. A completed session commits a transaction and
sends its postback, as Gravity's terminal adapter does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from gravity import conventions as C
from gravity.conventions import DeclineReason
from gravity.sandbox.clock import SandboxClock
from gravity.sandbox.errors import ApiError, Handled
from gravity.sandbox.fields import MMYY, dollars, envelope, optional_text, required_text
from gravity.sandbox.merchants import Merchants
from gravity.sandbox.records import Device, TerminalSession
from gravity.sandbox.store import Store
from gravity.sandbox.transactions import TransactionBook
from gravity.sandbox.vault import CardVault
from gravity.sandbox.wire import wire


class Terminals:
    """Each merchant's devices and every session pushed to one, keyed `oid|externalTransactionId`."""

    def __init__(
        self,
        store: Store,
        clock: SandboxClock,
        merchants: Merchants,
        book: TransactionBook,
        vault: CardVault,
        devices: dict[str, list[str]] | None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._merchants = merchants
        self._book = book
        self._vault = vault
        self._initial_devices = {oid: list(devices.get(oid, C.DEFAULT_SANDBOX_DEVICES) if devices else C.DEFAULT_SANDBOX_DEVICES) for oid in merchants}
        self.devices: dict[str, dict[str, Device]] = {}
        self.sessions: dict[str, TerminalSession] = {}
        self.clear()

    def holds(self, key: str) -> bool:
        """Whether a session was started under this `oid|externalTransactionId` key."""
        return key in self.sessions

    # --- the API ---------------------------------------------------------------------------------
    def list_devices(self, oid: str) -> Handled:
        with self._store.lock:
            items = [
                {"deviceName": name, "online": dev["online"], "busy": dev["session"] is not None} for name, dev in sorted(self.devices.get(oid, {}).items())
            ]
            return 200, {"devices": items}, []

    def start(self, oid: str, device_name: str, body: dict[str, Any]) -> Handled:
        data = envelope(body, "transactionData")
        with self._store.lock:
            device = self._device(oid, device_name)
            external_id = required_text(data, "externalTransactionId")
            amount = dollars(data)
            kind = data.get("transactionType", "CreditSale")
            if kind not in C.TERMINAL_TRANSACTION_TYPES:
                raise ApiError(400, f"transactionType must be one of {', '.join(C.TERMINAL_TRANSACTION_TYPES)}")
            save_card = data.get("saveCard", False)
            if not isinstance(save_card, bool):
                raise ApiError(400, "saveCard must be a boolean")
            reference = optional_text(data, "transactionReference")
            self._book.check_new_external_id(oid, external_id)
            if not device["online"]:
                raise ApiError(409, C.DEVICE_OFFLINE_MESSAGE)
            if device["session"] is not None:
                raise ApiError(409, C.DEVICE_BUSY_MESSAGE)
            self.sessions[f"{oid}|{external_id}"] = TerminalSession(
                oid, device_name, external_id, amount, kind, reference, save_card, "waiting", self._clock.now().isoformat()
            )
            device["session"] = external_id
            self._store.save()
            answer = {"deviceName": device_name, "externalTransactionId": external_id, "status": "pending"}
            return C.TERMINAL_START_STATUS, answer, []

    def cancel(self, oid: str, device_name: str, external_id: str) -> Handled:
        with self._store.lock:
            device = self._device(oid, device_name)
            session = self.sessions.get(f"{oid}|{external_id}")
            if session is None or session.device != device_name:
                raise ApiError(404, C.TERMINAL_SESSION_NOT_FOUND_MESSAGE)
            if session.state == "completed":
                raise ApiError(409, C.TERMINAL_ALREADY_COMPLETED_MESSAGE)
            if session.state == "waiting":
                session.state = "cancelled"
                device["session"] = None
                self._store.save()
            return 200, {"externalTransactionId": external_id, "status": session.state}, []

    # --- the customer at the device (control surface) --------------------------------------------
    def present_card(
        self,
        oid: str,
        device_name: str,
        *,
        outcome: str | None = None,
        card_number: str | None = None,
        expiry_mmyy: str | None = None,
        reason: str | None = None,
        approved_cents: int | None = None,
        entry_method: str | None = None,
        tip_cents: int | None = None,
        surcharge_cents: int | None = None,
    ) -> Handled:
        """The customer taps or inserts a card: the waiting transaction completes (postback sent).

        A tip or surcharge makes an approved sale take more than was asked (amountProcessed is the
        amount plus both), which the engine must book as such. [ours]"""
        with self._store.lock:
            device, session = self._waiting_session(oid, device_name)
            extra = _extras(session, outcome, tip_cents, surcharge_cents)
            number = card_number or C.APPROVED_VISA
            expiry = expiry_mmyy or self._clock.now().add(years=3).format("MMYY")
            if not (number.isascii() and number.isdigit()) or not MMYY.match(expiry):
                raise ApiError(400, "card_number must be digits and expiry_mmyy MMYY")
            amount = session.amount_cents
            if outcome in (None, "approve"):
                message = self._vault.behaviour(number, expiry)
                status, approved = ("approved", amount + sum(extra)) if message == C.APPROVED_MESSAGE else ("declined", 0)
            elif outcome == "decline":
                try:
                    message = C.DECLINE_MESSAGE[DeclineReason(reason or DeclineReason.GENERIC)]
                except ValueError:
                    raise ApiError(400, f"unknown decline reason {reason!r}") from None
                status, approved = "declined", 0
            elif outcome == "partial":
                if session.transaction_type != "CreditSale":
                    raise ApiError(400, "only a sale can be partially approved")
                approved = approved_cents if approved_cents is not None else amount // 2
                if not 0 < approved < amount:
                    raise ApiError(400, "approved_cents must be between 1 and the amount minus one cent")
                status, message = "partial", C.PARTIAL_MESSAGE
            else:
                raise ApiError(400, "outcome must be approve, decline or partial")
            tip, surcharge = extra if status == "approved" else (0, 0)
            card = self._vault.save_card(number, expiry)
            txn = self._book.new(
                oid,
                session.external_id,
                session.transaction_type,
                status=status,
                result_message=message,
                amount_cents=amount,
                approved_cents=approved,
                card_id=card.card_id,
                entry_method=entry_method or C.DEFAULT_TERMINAL_ENTRY_METHOD,
                reference=session.reference,
                source="terminal",
                tip_cents=tip,
                surcharge_cents=surcharge,
            )
            session.state = "completed"
            device["session"] = None
            self._store.save()
            flat = wire(txn, self._vault.get(txn.card_id))
            return 200, flat, [flat]

    def cancel_on_device(self, oid: str, device_name: str) -> Handled:
        """The customer presses cancel: the session ends with a declined "Cancelled" result. [ours]"""
        with self._store.lock:
            device, session = self._waiting_session(oid, device_name)
            txn = self._book.new(
                oid,
                session.external_id,
                session.transaction_type,
                status="declined",
                result_message=C.DECLINE_MESSAGE[DeclineReason.CANCELLED],
                amount_cents=session.amount_cents,
                approved_cents=0,
                reference=session.reference,
                source="terminal",
            )
            session.state = "completed"
            device["session"] = None
            self._store.save()
            flat = wire(txn, self._vault.get(txn.card_id))
            return 200, flat, [flat]

    def walk_away(self, oid: str, device_name: str) -> Handled:
        """The customer leaves: the device prompt times out, no transaction exists (lookup stays 404)."""
        with self._store.lock:
            device, session = self._waiting_session(oid, device_name)
            session.state = "abandoned"
            device["session"] = None
            self._store.save()
            return 200, {"externalTransactionId": session.external_id, "status": "abandoned"}, []

    def set_device(self, oid: str, name: str, online: bool) -> dict[str, Any]:
        with self._store.lock:
            self._merchants.require(oid)
            device = self.devices.setdefault(oid, {}).setdefault(name, {"online": True, "session": None})
            device["online"] = bool(online)
            self._store.save()
            return {"deviceName": name, "online": device["online"], "busy": device["session"] is not None}

    # --- helpers ---------------------------------------------------------------------------------
    def _device(self, oid: str, name: str) -> Device:
        device = self.devices.get(oid, {}).get(name)
        if device is None:
            raise ApiError(404, C.UNKNOWN_DEVICE_MESSAGE)
        return device

    def _waiting_session(self, oid: str, device_name: str) -> tuple[Device, TerminalSession]:
        self._merchants.require(oid)
        device = self._device(oid, device_name)
        session = self.sessions.get(f"{oid}|{device['session']}") if device["session"] else None
        if session is None or session.state != "waiting":
            raise ApiError(409, "no transaction is waiting on this device")
        return device, session

    # --- the state file --------------------------------------------------------------------------
    def clear(self) -> None:
        self.sessions = {}
        self.devices = {oid: {name: {"online": True, "session": None} for name in names} for oid, names in self._initial_devices.items()}

    def dump(self) -> dict[str, Any]:
        return {"sessions": {k: asdict(v) for k, v in self.sessions.items()}, "devices": self.devices}

    def load(self, data: Mapping[str, Any]) -> None:
        self.sessions = {k: TerminalSession(**v) for k, v in data.get("sessions", {}).items()}
        for oid, devs in data.get("devices", {}).items():
            if oid in self._merchants:
                self.devices[oid] = devs


def _extras(session: TerminalSession, outcome: str | None, tip_cents: int | None, surcharge_cents: int | None) -> tuple[int, int]:
    """(tip, surcharge) in cents, refused unless they can apply: a sale approved in full."""
    extra = []
    for name, value in (("tip_cents", tip_cents), ("surcharge_cents", surcharge_cents)):
        if value is None:
            value = 0
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ApiError(400, f"{name} must be a whole number of cents, zero or more")
        extra.append(value)
    if any(extra) and (outcome not in (None, "approve") or session.transaction_type != "CreditSale"):
        raise ApiError(400, "a tip or surcharge applies only to a sale approved in full")
    return extra[0], extra[1]
