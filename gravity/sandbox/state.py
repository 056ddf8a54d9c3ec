"""The sandbox's gateway state and rules, free of HTTP: merchants, cards, transactions, batches,
idempotency keys, faults, terminals and the sandbox clock.

Every public method takes the one `threading.RLock`, does its work without awaiting and returns, so
concurrent requests (and the control surface) see each change whole. Mutations are persisted to the
optional JSON state file (written to a temporary file and renamed) so a demo can restart the sandbox.
No full card number or security code is kept, in memory or on disk: a card is its masked number,
brand, expiry, fingerprint and scripted behaviour, like a real gateway's vault reference.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import threading
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pendulum

from foundation.money import MoneyError, from_dollar_string, to_dollar_string
from gravity import conventions as C
from gravity.conventions import DeclineReason

_STRICT_DOLLARS = re.compile(r"^[0-9]{1,12}\.[0-9]{2}$")
_MMYY = re.compile(r"^(0[1-9]|1[0-2])[0-9]{2}$")
_FINGERPRINT_SALT = b"vet-billing-sandbox-fingerprint"


class ApiError(Exception):
    """An HTTP error answer: status and a `message` for the JSON body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Card:
    card_id: str
    masked: str
    brand: str
    expiry_mmyy: str
    fingerprint: str
    declines_after_save: bool = False
    expired: bool = False
    script: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Txn:
    oid: str
    external_id: str
    unique_trans_id: str
    transaction_type: str
    status: str  # approved | declined | partial
    result_message: str
    amount_cents: int | None
    approved_cents: int
    created_at: str
    card_id: str | None = None
    entry_method: str | None = None
    batch_number: int | None = None
    settled: bool = False
    reference: str | None = None
    billing_name: str | None = None
    cashier_id: str | None = None
    approval_number: str | None = None
    parent_unique_trans_id: str | None = None
    refunded_cents: int = 0
    voided: bool = False
    source: str = "api"
    tip_cents: int = 0  # above the request, added at the terminal; included in approved_cents
    surcharge_cents: int = 0  # likewise
    avs_code: str = ""  # "" = not checked
    cvv_code: str = ""

    @property
    def is_approved(self) -> bool:
        return self.status in ("approved", "partial")


@dataclass
class Session:
    """One terminal transaction pushed to a device."""

    oid: str
    device: str
    external_id: str
    amount_cents: int
    transaction_type: str
    reference: str | None
    save_card: bool
    state: str  # waiting | completed | cancelled | abandoned
    created_at: str


@dataclass
class Fault:
    endpoint: str
    kind: str
    remaining: int
    delay_s: float
    oid: str | None = None


Handled = tuple[int, dict[str, Any], list[dict[str, Any]]]  # status, JSON body, postbacks to send


class SandboxState:
    """All the sandbox knows. Construct once per server; safe to call from any thread."""

    def __init__(
        self,
        oids: dict[str, str],
        *,
        devices: dict[str, list[str]] | None = None,
        state_file: str | Path | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self._defer_save = False
        self._state_file = Path(state_file) if state_file else None
        self.oids: dict[str, str] = dict(oids)
        self._initial_devices = {
            oid: list(devices.get(oid, C.DEFAULT_SANDBOX_DEVICES) if devices else C.DEFAULT_SANDBOX_DEVICES)
            for oid in self.oids
        }
        self._clear()
        if self._state_file and self._state_file.exists():
            self._load()

    # --- lifecycle ------------------------------------------------------------------------------
    def _clear(self) -> None:
        self.clock_offset_s: float = 0.0
        self.cards: dict[str, Card] = {}
        self.txns: dict[str, Txn] = {}  # key: oid|externalTransactionId
        self.by_unique: dict[str, str] = {}  # uniqueTransId -> txn key
        self.sessions: dict[str, Session] = {}  # key: oid|externalTransactionId
        self.devices: dict[str, dict[str, dict[str, Any]]] = {
            oid: {name: {"online": True, "session": None} for name in names}
            for oid, names in self._initial_devices.items()
        }
        self.batches: dict[str, int] = {oid: 1 for oid in self.oids}
        self.idempotency: dict[str, dict[str, Any]] = {}
        self.faults: list[Fault] = []

    def reset(self) -> None:
        """Forget every transaction, card, key, fault and clock offset (merchants and devices stay)."""
        with self._lock:
            self._clear()
            self._save()

    def _save(self) -> None:
        if not self._state_file or self._defer_save:
            return
        data = {
            "clock_offset_s": self.clock_offset_s,
            "cards": {k: asdict(v) for k, v in self.cards.items()},
            "txns": {k: asdict(v) for k, v in self.txns.items()},
            "sessions": {k: asdict(v) for k, v in self.sessions.items()},
            "devices": self.devices,
            "batches": self.batches,
            "idempotency": {k: v for k, v in self.idempotency.items() if v.get("done")},
        }
        tmp = self._state_file.with_name(self._state_file.name + ".tmp")
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, self._state_file)

    def _load(self) -> None:
        data = json.loads(self._state_file.read_text())  # type: ignore[union-attr]
        self.clock_offset_s = float(data.get("clock_offset_s", 0.0))
        self.cards = {k: Card(**v) for k, v in data.get("cards", {}).items()}
        self.txns = {k: Txn(**v) for k, v in data.get("txns", {}).items()}
        self.by_unique = {t.unique_trans_id: k for k, t in self.txns.items()}
        self.sessions = {k: Session(**v) for k, v in data.get("sessions", {}).items()}
        for oid, devs in data.get("devices", {}).items():
            if oid in self.oids:
                self.devices[oid] = devs
        for oid, number in data.get("batches", {}).items():
            if oid in self.oids:
                self.batches[oid] = int(number)
        self.idempotency = dict(data.get("idempotency", {}))

    # --- clock ----------------------------------------------------------------------------------
    def now(self) -> pendulum.DateTime:
        """The sandbox clock: real UTC time plus an offset tests can advance."""
        return pendulum.now("UTC").add(seconds=self.clock_offset_s)

    def advance_clock(self, seconds: float) -> pendulum.DateTime:
        with self._lock:
            self.clock_offset_s += float(seconds)
            self._save()
            return self.now()

    def set_clock_offset(self, seconds: float) -> pendulum.DateTime:
        with self._lock:
            self.clock_offset_s = float(seconds)
            self._save()
            return self.now()

    # --- auth -----------------------------------------------------------------------------------
    def check_auth(self, oid: str, authorization: str | None) -> None:
        """404 for an OID we were not given, 401 for a missing or wrong bearer token."""
        expected = self.oids.get(oid)
        if expected is None:
            raise ApiError(404, C.UNKNOWN_OID_MESSAGE)
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip().encode(), expected.encode()):
            raise ApiError(401, "invalid or missing bearer token")

    # --- idempotency (24 h per endpoint) --------------------------------------------------------
    def idempotency_begin(self, oid: str, endpoint: str, key: str, body: bytes) -> tuple[int, str] | None:
        """Replay a finished identical request, refuse a conflicting one, or mark this one running."""
        digest = hashlib.sha256(body).hexdigest()
        slot = f"{oid}|{endpoint}|{key}"
        with self._lock:
            entry = self.idempotency.get(slot)
            if entry is not None:
                created = pendulum.parse(entry["created_at"])
                if (self.now() - created).total_seconds() > C.IDEMPOTENCY_TTL_SECONDS:
                    entry = None
            if entry is None:
                if len(self.idempotency) >= 1000 and len(self.idempotency) % 1000 == 0:
                    self._purge_expired_keys()
                self.idempotency[slot] = {"hash": digest, "created_at": self.now().isoformat(), "done": False}
                return None
            if entry["hash"] != digest:
                raise ApiError(409, C.IDEMPOTENCY_CONFLICT_MESSAGE)
            if not entry["done"]:
                raise ApiError(409, C.IDEMPOTENCY_IN_PROGRESS_MESSAGE)
            return entry["status"], entry["body"]

    def _purge_expired_keys(self) -> None:
        now = self.now()
        self.idempotency = {
            slot: entry for slot, entry in self.idempotency.items()
            if not entry["done"] or (now - pendulum.parse(entry["created_at"])).total_seconds() <= C.IDEMPOTENCY_TTL_SECONDS
        }

    def idempotency_finish(self, oid: str, endpoint: str, key: str, status: int, body: str) -> None:
        with self._lock:
            entry = self.idempotency.get(f"{oid}|{endpoint}|{key}")
            if entry is not None:
                entry.update(status=status, body=body, done=True)
                self._save()

    def idempotency_abandon(self, oid: str, endpoint: str, key: str) -> None:
        """The request was not processed (injected 500/429, crash): forget the running marker."""
        with self._lock:
            slot = f"{oid}|{endpoint}|{key}"
            if slot in self.idempotency and not self.idempotency[slot]["done"]:
                del self.idempotency[slot]

    # --- faults ---------------------------------------------------------------------------------
    def add_fault(self, endpoint: str, kind: str, count: int, delay_s: float | None, oid: str | None) -> None:
        if endpoint not in C.FAULT_ENDPOINTS:
            raise ApiError(400, f"unknown endpoint {endpoint!r}; one of {', '.join(C.FAULT_ENDPOINTS)}")
        if kind not in C.FAULT_KINDS:
            raise ApiError(400, f"unknown fault kind {kind!r}; one of {', '.join(C.FAULT_KINDS)}")
        if kind == "404" and endpoint not in C.NOT_FOUND_FAULT_ENDPOINTS:
            raise ApiError(400, f"a 404 fault applies only to {', '.join(C.NOT_FOUND_FAULT_ENDPOINTS)}")
        if count < 1:
            raise ApiError(400, "count must be at least 1")
        with self._lock:
            self.faults.append(Fault(endpoint, kind, count, float(delay_s or C.DEFAULT_SLOW_SECONDS), oid))

    def take_fault(self, endpoint: str, oid: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.endpoint == endpoint and fault.remaining > 0 and fault.oid in (None, oid):
                    fault.remaining -= 1
                    taken = Fault(**asdict(fault))
                    self.faults = [f for f in self.faults if f.remaining > 0]
                    return taken
            return None

    def clear_faults(self) -> None:
        with self._lock:
            self.faults = []

    def list_faults(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(f) for f in self.faults]

    # --- helpers --------------------------------------------------------------------------------
    def _field(self, data: dict[str, Any], name: str, *, required: bool = True) -> str | None:
        value = data.get(name)
        if value is None or value == "":
            if required:
                raise ApiError(400, f"{name} is required")
            return None
        if not isinstance(value, str):
            raise ApiError(400, f"{name} must be a string")
        return value

    def _money(self, data: dict[str, Any], name: str = "amount") -> int:
        value = data.get(name)
        if not isinstance(value, str) or not _STRICT_DOLLARS.match(value):
            raise ApiError(400, f"{name} must be a string of dollars with two decimals, like \"25.00\"")
        try:
            cents = from_dollar_string(value)
        except MoneyError:
            raise ApiError(400, f"{name} is out of range") from None
        if cents <= 0:
            raise ApiError(400, f"{name} must be greater than zero")
        return cents

    def _check_new_external_id(self, oid: str, external_id: str) -> None:
        key = f"{oid}|{external_id}"
        if key in self.txns or key in self.sessions:
            raise ApiError(400, C.REUSED_EXTERNAL_ID_MESSAGE)

    def _new_txn(self, oid: str, external_id: str, transaction_type: str, **values: Any) -> Txn:
        approved = values.get("status", "approved") in ("approved", "partial")
        txn = Txn(
            oid=oid,
            external_id=external_id,
            unique_trans_id=uuid.uuid4().hex,
            transaction_type=transaction_type,
            created_at=self.now().isoformat(),
            approval_number=f"{secrets.randbelow(1_000_000):06d}" if approved else None,
            batch_number=self.batches[oid] if approved else None,
            **values,
        )
        key = f"{oid}|{external_id}"
        self.txns[key] = txn
        self.by_unique[txn.unique_trans_id] = key
        return txn

    def _txn_by_unique(self, oid: str, unique_trans_id: str | None) -> Txn:
        key = self.by_unique.get(unique_trans_id or "")
        txn = self.txns.get(key) if key else None
        if txn is None or txn.oid != oid:
            raise ApiError(400, C.UNKNOWN_UNIQUE_TRANS_ID_MESSAGE)
        return txn

    def _card_of_token(self, oid: str, card_ref: str | None) -> Card:
        txn = self._txn_by_unique(oid, card_ref)
        if not txn.is_approved or txn.card_id is None or txn.card_id not in self.cards:
            raise ApiError(400, C.UNKNOWN_UNIQUE_TRANS_ID_MESSAGE)
        return self.cards[txn.card_id]

    def _card_behaviour(self, number: str, expiry_mmyy: str) -> str:
        """The resultMessage a card number gets when keyed or tapped (before any scripting)."""
        fixed = C.TEST_CARDS.get(number)
        if fixed is not None and fixed != C.APPROVED_MESSAGE:
            return fixed
        if not C.luhn_ok(number) or C.card_brand(number) is None:
            return C.DECLINE_MESSAGE[DeclineReason.INVALID_ACCOUNT]
        if self._expired(expiry_mmyy):
            return C.DECLINE_MESSAGE[DeclineReason.EXPIRED_CARD]
        return C.APPROVED_MESSAGE

    def _expired(self, mmyy: str) -> bool:
        month, year = int(mmyy[:2]), 2000 + int(mmyy[2:])
        now = self.now()
        return (year, month) < (now.year, now.month)

    def _make_card(self, number: str, expiry_mmyy: str) -> Card:
        fingerprint = hashlib.sha256(_FINGERPRINT_SALT + number.encode()).hexdigest()[:32]
        card = Card(
            card_id=uuid.uuid4().hex,
            masked=C.mask_card(number),
            brand=C.card_brand(number) or "",
            expiry_mmyy=expiry_mmyy,
            fingerprint=fingerprint,
            declines_after_save=number == C.DECLINES_AFTER_SAVE_CARD,
        )
        self.cards[card.card_id] = card
        return card

    def wire(self, txn: Txn) -> dict[str, Any]:
        """The transaction as Gravity writes it: camelCase, string money, string booleans."""
        card = self.cards.get(txn.card_id or "")
        partial = txn.status == "partial"
        return {
            "externalTransactionId": txn.external_id,
            "uniqueTransId": txn.unique_trans_id,
            "transactionType": txn.transaction_type,
            "resultStatus": "true" if txn.is_approved else "false",
            "resultMessage": txn.result_message,
            "approvalNumberResult": txn.approval_number or "",
            "amount": to_dollar_string(txn.amount_cents) if txn.amount_cents is not None else "",
            "amountProcessed": to_dollar_string(txn.approved_cents) if txn.is_approved else "",
            "amountBalance": to_dollar_string((txn.amount_cents or 0) - txn.approved_cents) if partial else "",
            "amountTipped": to_dollar_string(txn.tip_cents) if txn.tip_cents else "",
            "amountTaxed": to_dollar_string(txn.surcharge_cents) if txn.surcharge_cents else "",
            "isPartialApproval": "true" if partial else "false",
            "maskedAccount": card.masked if card else "",
            "accountCardType": card.brand if card else "",
            "accountExpiryDate": card.expiry_mmyy if card else "",
            "accountEntryMethod": txn.entry_method or "",
            "accountFingerprint": card.fingerprint if card else "",
            "batchNumber": str(txn.batch_number) if txn.batch_number is not None else "",
            "transactionReference": txn.reference or "",
            "billingName": txn.billing_name or "",
            "cashier": txn.cashier_id or "",
            "avsResponseCode": txn.avs_code,
            "avsResponseText": C.AVS_RESPONSES.get(txn.avs_code, ""),
            "cvvResponseCode": txn.cvv_code,
            "cvvResponseText": C.CVV_RESPONSES.get(txn.cvv_code, ""),
            "transactionDate": txn.created_at,
        }

    def _answer(self, txn: Txn) -> Handled:
        self._save()
        return 200, {"transactionResponse": self.wire(txn)}, []

    # --- the API --------------------------------------------------------------------------------
    def _sale_outcome(self, card: Card, amount_cents: int) -> tuple[str, str, int]:
        """(status, resultMessage, approved cents) of a card-on-file charge."""
        if card.script:
            step = card.script[0]
            step["count"] -= 1
            if step["count"] <= 0:
                card.script.pop(0)
            if step["kind"] == "partial":
                approved = min(int(step["approved_cents"]), amount_cents - 1)
                if approved > 0:
                    return "partial", C.PARTIAL_MESSAGE, approved
                return "declined", C.DECLINE_MESSAGE[DeclineReason.INSUFFICIENT_FUNDS], 0
            return "declined", C.DECLINE_MESSAGE[DeclineReason(step["reason"])], 0
        if card.expired or self._expired(card.expiry_mmyy):
            return "declined", C.DECLINE_MESSAGE[DeclineReason.EXPIRED_CARD], 0
        if card.declines_after_save:
            return "declined", C.DECLINES_AFTER_SAVE_MESSAGE, 0
        return "approved", C.APPROVED_MESSAGE, amount_cents

    def tokenized_payment(self, oid: str, body: dict[str, Any], *, source: str = "api", commit: bool = True) -> Handled:
        data = self._envelope(body, "transactionData")
        with self._lock:
            card_ref = self._field(data, "uniqueTransId")
            amount = self._money(data)
            external_id = self._field(data, "externalTransactionId")
            reference = self._field(data, "transactionReference", required=False)
            billing_name = self._field(data, "billingName", required=False)
            cashier_id = self._field(data, "cashierId", required=False)
            self._check_new_external_id(oid, external_id)  # type: ignore[arg-type]
            card = self._card_of_token(oid, card_ref)
            if not commit:
                return 200, {}, []
            status, message, approved = self._sale_outcome(card, amount)
            txn = self._new_txn(
                oid, external_id, "CreditSale",  # type: ignore[arg-type]
                status=status, result_message=message, amount_cents=amount, approved_cents=approved,
                card_id=card.card_id, entry_method="Keyed", reference=reference, billing_name=billing_name,
                cashier_id=cashier_id, source=source,
            )
            return self._answer(txn)

    def _remaining(self, sale: Txn) -> int:
        return 0 if sale.voided else sale.approved_cents - sale.refunded_cents

    def tokenized_refund(self, oid: str, body: dict[str, Any]) -> Handled:
        data = self._envelope(body, "transactionData")
        with self._lock:
            unique = self._field(data, "uniqueTransId")
            amount = self._money(data)
            external_id = self._field(data, "externalTransactionId")
            self._check_new_external_id(oid, external_id)  # type: ignore[arg-type]
            sale = self._txn_by_unique(oid, unique)
            if sale.transaction_type != "CreditSale" or not sale.is_approved:
                raise ApiError(400, "only an approved sale can be refunded")
            if amount > self._remaining(sale):
                raise ApiError(400, C.REFUND_EXCEEDS_REMAINING_MESSAGE)
            return self._answer(self._refund(sale, amount, external_id))  # type: ignore[arg-type]

    def _refund(self, sale: Txn, amount: int, external_id: str) -> Txn:
        sale.refunded_cents += amount
        return self._new_txn(
            sale.oid, external_id, "CreditReturn", status="approved", result_message=C.APPROVED_MESSAGE,
            amount_cents=amount, approved_cents=amount, card_id=sale.card_id, entry_method=sale.entry_method,
            parent_unique_trans_id=sale.unique_trans_id, reference=sale.reference,
        )

    def void(self, oid: str, body: dict[str, Any]) -> Handled:
        data = self._envelope(body, "transactionData")
        with self._lock:
            unique = self._field(data, "uniqueTransId")
            external_id = self._field(data, "externalTransactionId")
            self._check_new_external_id(oid, external_id)  # type: ignore[arg-type]
            sale = self._txn_by_unique(oid, unique)
            if sale.transaction_type != "CreditSale" or not sale.is_approved:
                raise ApiError(400, "only an approved sale can be voided")
            if sale.voided:
                raise ApiError(400, C.ALREADY_VOIDED_MESSAGE)
            if sale.settled:
                raise ApiError(400, C.VOID_AFTER_SETTLEMENT_MESSAGE)
            if sale.refunded_cents:
                raise ApiError(400, C.VOID_WITH_REFUNDS_MESSAGE)
            age = (self.now() - pendulum.parse(sale.created_at)).total_seconds()
            if age > C.VOID_WINDOW_SECONDS:
                # Gravity turns a late void of an unsettled sale into a refund of what is left. [doc]
                return self._answer(self._refund(sale, self._remaining(sale), external_id))  # type: ignore[arg-type]
            sale.voided = True
            txn = self._new_txn(
                oid, external_id, "Void", status="approved", result_message=C.APPROVED_MESSAGE,  # type: ignore[arg-type]
                amount_cents=sale.approved_cents, approved_cents=sale.approved_cents, card_id=sale.card_id,
                entry_method=sale.entry_method, parent_unique_trans_id=sale.unique_trans_id, reference=sale.reference,
            )
            return self._answer(txn)

    def lookup(self, oid: str, external_id: str) -> Handled:
        with self._lock:
            txn = self.txns.get(f"{oid}|{external_id}")
            if txn is None:
                raise ApiError(404, C.TRANSACTION_NOT_FOUND_MESSAGE)
            return 200, {"transactionResponse": self.wire(txn)}, []

    def tokenize(self, oid: str, body: dict[str, Any]) -> Handled:
        data = self._envelope(body, "accountData")
        with self._lock:
            number = self._field(data, "cardNumber") or ""
            expiry = self._field(data, "cardExpirationDate") or ""
            external_id = self._field(data, "externalTransactionId")
            billing_name = self._field(data, "billingName", required=False)
            postal_code = self._field(data, "billingPostalCode", required=False)
            if not (number.isascii() and number.isdigit()) or not 12 <= len(number) <= 19:
                raise ApiError(400, "cardNumber must be 12 to 19 digits")
            if not _MMYY.match(expiry):
                raise ApiError(400, "cardExpirationDate must be MMYY")
            security = data.get("cardSecurityCode")
            if security not in (None, "") and not (isinstance(security, str) and security.isascii() and security.isdigit() and 3 <= len(security) <= 4):
                raise ApiError(400, "cardSecurityCode must be 3 or 4 digits")
            self._check_new_external_id(oid, external_id)  # type: ignore[arg-type]
            message = self._card_behaviour(number, expiry)
            approved = message == C.APPROVED_MESSAGE
            card = self._make_card(number, expiry)
            txn = self._new_txn(
                oid, external_id, "CreditSaveCard",  # type: ignore[arg-type]
                status="approved" if approved else "declined", result_message=message, amount_cents=None,
                approved_cents=0, card_id=card.card_id, entry_method="Keyed", billing_name=billing_name,
                avs_code=C.avs_code(postal_code), cvv_code=C.cvv_code(security or None),
            )
            txn.batch_number = None  # saving a card moves no money and joins no batch
            return self._answer(txn)

    def bulk(self, oid: str, body: dict[str, Any]) -> Handled:
        """Validate every item first (any bad item refuses the whole run), then commit them all."""
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            raise ApiError(400, "requests must be a non-empty list")
        if len(requests) > C.BULK_MAX_REQUESTS:
            raise ApiError(400, f"at most {C.BULK_MAX_REQUESTS} requests per bulk call")
        with self._lock:
            seen: set[str] = set()
            for index, item in enumerate(requests):
                if not isinstance(item, dict) or item.get("transactionType") != "CreditSale":
                    raise ApiError(400, f"requests[{index}]: transactionType must be CreditSale")
                try:
                    self.tokenized_payment(oid, item, commit=False)
                except ApiError as error:
                    raise ApiError(400, f"requests[{index}]: {error.message}") from None
                external_id = item["transactionData"]["externalTransactionId"]
                if external_id in seen:
                    raise ApiError(400, f"requests[{index}]: {C.REUSED_EXTERNAL_ID_MESSAGE}")
                seen.add(external_id)
            postbacks = []
            self._defer_save = True
            try:
                for item in requests:
                    _, answer, _ = self.tokenized_payment(oid, item, source="bulk")
                    postbacks.append(answer["transactionResponse"])
            finally:
                self._defer_save = False
            self._save()
            return C.BULK_ACCEPTED_STATUS, {"accepted": len(requests)}, postbacks

    def _envelope(self, body: Any, name: str) -> dict[str, Any]:
        data = body.get(name) if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise ApiError(400, f"body must be {{\"{name}\": {{...}}}}")
        return data

    # --- terminals ------------------------------------------------------------------------------
    def _device(self, oid: str, name: str) -> dict[str, Any]:
        device = self.devices.get(oid, {}).get(name)
        if device is None:
            raise ApiError(404, C.UNKNOWN_DEVICE_MESSAGE)
        return device

    def list_devices(self, oid: str) -> Handled:
        with self._lock:
            items = [
                {"deviceName": name, "online": dev["online"], "busy": dev["session"] is not None}
                for name, dev in sorted(self.devices.get(oid, {}).items())
            ]
            return 200, {"devices": items}, []

    def terminal_start(self, oid: str, device_name: str, body: dict[str, Any]) -> Handled:
        data = self._envelope(body, "transactionData")
        with self._lock:
            device = self._device(oid, device_name)
            external_id = self._field(data, "externalTransactionId") or ""
            amount = self._money(data)
            kind = data.get("transactionType", "CreditSale")
            if kind not in C.TERMINAL_TRANSACTION_TYPES:
                raise ApiError(400, f"transactionType must be one of {', '.join(C.TERMINAL_TRANSACTION_TYPES)}")
            save_card = data.get("saveCard", False)
            if not isinstance(save_card, bool):
                raise ApiError(400, "saveCard must be a boolean")
            reference = self._field(data, "transactionReference", required=False)
            self._check_new_external_id(oid, external_id)
            if not device["online"]:
                raise ApiError(409, C.DEVICE_OFFLINE_MESSAGE)
            if device["session"] is not None:
                raise ApiError(409, C.DEVICE_BUSY_MESSAGE)
            self.sessions[f"{oid}|{external_id}"] = Session(
                oid, device_name, external_id, amount, kind, reference, save_card, "waiting", self.now().isoformat()
            )
            device["session"] = external_id
            self._save()
            answer = {"deviceName": device_name, "externalTransactionId": external_id, "status": "pending"}
            return C.TERMINAL_START_STATUS, answer, []

    def terminal_cancel(self, oid: str, device_name: str, external_id: str) -> Handled:
        with self._lock:
            device = self._device(oid, device_name)
            session = self.sessions.get(f"{oid}|{external_id}")
            if session is None or session.device != device_name:
                raise ApiError(404, C.TERMINAL_SESSION_NOT_FOUND_MESSAGE)
            if session.state == "completed":
                raise ApiError(409, C.TERMINAL_ALREADY_COMPLETED_MESSAGE)
            if session.state == "waiting":
                session.state = "cancelled"
                device["session"] = None
                self._save()
            return 200, {"externalTransactionId": external_id, "status": session.state}, []

    def _waiting_session(self, oid: str, device_name: str) -> tuple[dict[str, Any], Session]:
        if oid not in self.oids:
            raise ApiError(404, C.UNKNOWN_OID_MESSAGE)
        device = self._device(oid, device_name)
        session = self.sessions.get(f"{oid}|{device['session']}") if device["session"] else None
        if session is None or session.state != "waiting":
            raise ApiError(409, "no transaction is waiting on this device")
        return device, session

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
        with self._lock:
            device, session = self._waiting_session(oid, device_name)
            extra = self._extras(session, outcome, tip_cents, surcharge_cents)
            number = card_number or C.DEFAULT_TEST_CARD
            expiry = expiry_mmyy or self.now().add(years=3).format("MMYY")
            if not (number.isascii() and number.isdigit()) or not _MMYY.match(expiry):
                raise ApiError(400, "card_number must be digits and expiry_mmyy MMYY")
            amount = session.amount_cents
            if outcome in (None, "approve"):
                message = self._card_behaviour(number, expiry)
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
            card = self._make_card(number, expiry)
            txn = self._new_txn(
                oid, session.external_id, session.transaction_type, status=status, result_message=message,
                amount_cents=amount, approved_cents=approved, card_id=card.card_id,
                entry_method=entry_method or C.DEFAULT_TERMINAL_ENTRY_METHOD, reference=session.reference,
                source="terminal", tip_cents=tip, surcharge_cents=surcharge,
            )
            session.state = "completed"
            device["session"] = None
            self._save()
            flat = self.wire(txn)
            return 200, flat, [flat]

    @staticmethod
    def _extras(session: Session, outcome: str | None, tip_cents: int | None, surcharge_cents: int | None) -> tuple[int, int]:
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

    def cancel_on_device(self, oid: str, device_name: str) -> Handled:
        """The customer presses cancel: the session ends with a declined "Cancelled" result. [ours]"""
        with self._lock:
            device, session = self._waiting_session(oid, device_name)
            txn = self._new_txn(
                oid, session.external_id, session.transaction_type, status="declined",
                result_message=C.DECLINE_MESSAGE[DeclineReason.CANCELLED], amount_cents=session.amount_cents,
                approved_cents=0, reference=session.reference, source="terminal",
            )
            session.state = "completed"
            device["session"] = None
            self._save()
            flat = self.wire(txn)
            return 200, flat, [flat]

    def walk_away(self, oid: str, device_name: str) -> Handled:
        """The customer leaves: the device prompt times out, no transaction exists (lookup stays 404)."""
        with self._lock:
            device, session = self._waiting_session(oid, device_name)
            session.state = "abandoned"
            device["session"] = None
            self._save()
            return 200, {"externalTransactionId": session.external_id, "status": "abandoned"}, []

    def set_device(self, oid: str, name: str, online: bool) -> dict[str, Any]:
        with self._lock:
            if oid not in self.oids:
                raise ApiError(404, C.UNKNOWN_OID_MESSAGE)
            device = self.devices.setdefault(oid, {}).setdefault(name, {"online": True, "session": None})
            device["online"] = bool(online)
            self._save()
            return {"deviceName": name, "online": device["online"], "busy": device["session"] is not None}

    # --- scripting cards, settlement, reconciliation --------------------------------------------
    def script_card(self, card_ref: str, step: dict[str, Any]) -> None:
        with self._lock:
            key = self.by_unique.get(card_ref)
            txn = self.txns.get(key) if key else None
            if txn is None or txn.card_id is None or not txn.is_approved:
                raise ApiError(404, "no saved card with that uniqueTransId")
            card = self.cards[txn.card_id]
            if step["kind"] == "expire":
                card.expired = True
            else:
                card.script.append(step)
            self._save()

    def settle(self, oid: str | None) -> dict[str, Any]:
        """Close the open batch of one OID (or all): its sales can no longer be voided."""
        with self._lock:
            closed = {}
            for each in [oid] if oid else list(self.oids):
                if each not in self.oids:
                    raise ApiError(404, C.UNKNOWN_OID_MESSAGE)
                number = self.batches[each]
                held = [t for t in self.txns.values() if t.oid == each and t.batch_number == number]
                for txn in held:
                    txn.settled = True
                self.batches[each] = number + 1
                closed[each] = {"batch_number": number, "transactions": len(held)}
            self._save()
            return closed

    def transactions(self, oid: str | None = None) -> list[dict[str, Any]]:
        """Every committed transaction, for reconciling a ledger against the gateway to the cent."""
        with self._lock:
            rows = []
            for txn in sorted(self.txns.values(), key=lambda t: t.created_at):
                if oid and txn.oid != oid:
                    continue
                amount = txn.amount_cents
                rows.append({
                    "oid": txn.oid,
                    "external_transaction_id": txn.external_id,
                    "unique_trans_id": txn.unique_trans_id,
                    "transaction_type": txn.transaction_type,
                    "status": txn.status,
                    "result_message": txn.result_message,
                    "amount_cents": amount,
                    "amount": to_dollar_string(amount) if amount is not None else None,
                    "approved_cents": txn.approved_cents,
                    "approved": to_dollar_string(txn.approved_cents),
                    "tip_cents": txn.tip_cents,
                    "surcharge_cents": txn.surcharge_cents,
                    "refunded_cents": txn.refunded_cents,
                    "voided": txn.voided,
                    "voided_cents": txn.approved_cents if txn.voided else 0,
                    "parent_unique_trans_id": txn.parent_unique_trans_id,
                    "batch_number": txn.batch_number,
                    "settled": txn.settled,
                    "reference": txn.reference,
                    "source": txn.source,
                    "created_at": txn.created_at,
                })
            return rows
