"""emergepay's card-on-file API: save a card, charge it, refund or void a sale, look one up, bulk charges.

Each call validates its fields in the order Gravity does, then commits under the store's lock and
answers with the transaction as Gravity writes it.
"""

from __future__ import annotations

from typing import Any

from gravity import conventions as C
from gravity.sandbox.clock import SandboxClock, instant
from gravity.sandbox.errors import ApiError, Handled
from gravity.sandbox.fields import MMYY, dollars, envelope, optional_text, required_text
from gravity.sandbox.records import Txn
from gravity.sandbox.store import Store
from gravity.sandbox.transactions import TransactionBook
from gravity.sandbox.vault import CardVault
from gravity.sandbox.wire import wire


class CardPayments:
    """The card-on-file calls of one sandbox, over its vault and its book of transactions."""

    def __init__(self, store: Store, clock: SandboxClock, book: TransactionBook, vault: CardVault) -> None:
        self._store = store
        self._clock = clock
        self._book = book
        self._vault = vault

    def tokenized_payment(self, oid: str, body: dict[str, Any], *, source: str = "api", commit: bool = True) -> Handled:
        data = envelope(body, "transactionData")
        with self._store.lock:
            card_ref = required_text(data, "uniqueTransId")
            amount = dollars(data)
            external_id = required_text(data, "externalTransactionId")
            reference = optional_text(data, "transactionReference")
            billing_name = optional_text(data, "billingName")
            cashier_id = optional_text(data, "cashierId")
            self._book.check_new_external_id(oid, external_id)
            card = self._vault.card_of_token(oid, card_ref)
            if not commit:
                return 200, {}, []
            status, message, approved = self._vault.sale_outcome(card, amount)
            txn = self._book.new(
                oid,
                external_id,
                "CreditSale",
                status=status,
                result_message=message,
                amount_cents=amount,
                approved_cents=approved,
                card_id=card.card_id,
                entry_method="Keyed",
                reference=reference,
                billing_name=billing_name,
                cashier_id=cashier_id,
                source=source,
            )
            return self._answer(txn)

    def tokenized_refund(self, oid: str, body: dict[str, Any]) -> Handled:
        data = envelope(body, "transactionData")
        with self._store.lock:
            unique = required_text(data, "uniqueTransId")
            amount = dollars(data)
            external_id = required_text(data, "externalTransactionId")
            self._book.check_new_external_id(oid, external_id)
            sale = self._book.of_merchant(oid, unique)
            if sale.transaction_type != "CreditSale" or not sale.is_approved:
                raise ApiError(400, "only an approved sale can be refunded")
            if amount > _remaining(sale):
                raise ApiError(400, C.REFUND_EXCEEDS_REMAINING_MESSAGE)
            return self._answer(self._refund(sale, amount, external_id))

    def void(self, oid: str, body: dict[str, Any]) -> Handled:
        data = envelope(body, "transactionData")
        with self._store.lock:
            unique = required_text(data, "uniqueTransId")
            external_id = required_text(data, "externalTransactionId")
            self._book.check_new_external_id(oid, external_id)
            sale = self._book.of_merchant(oid, unique)
            if sale.transaction_type != "CreditSale" or not sale.is_approved:
                raise ApiError(400, "only an approved sale can be voided")
            if sale.voided:
                raise ApiError(400, C.ALREADY_VOIDED_MESSAGE)
            if sale.settled:
                raise ApiError(400, C.VOID_AFTER_SETTLEMENT_MESSAGE)
            if sale.refunded_cents:
                raise ApiError(400, C.VOID_WITH_REFUNDS_MESSAGE)
            age = (self._clock.now() - instant(sale.created_at)).total_seconds()
            if age > C.VOID_WINDOW_SECONDS:
                # Gravity turns a late void of an unsettled sale into a refund of what is left. [doc]
                return self._answer(self._refund(sale, _remaining(sale), external_id))
            sale.voided = True
            txn = self._book.new(
                oid,
                external_id,
                "Void",
                status="approved",
                result_message=C.APPROVED_MESSAGE,
                amount_cents=sale.approved_cents,
                approved_cents=sale.approved_cents,
                card_id=sale.card_id,
                entry_method=sale.entry_method,
                parent_unique_trans_id=sale.unique_trans_id,
                reference=sale.reference,
            )
            return self._answer(txn)

    def lookup(self, oid: str, external_id: str) -> Handled:
        with self._store.lock:
            txn = self._book.find(oid, external_id)
            if txn is None:
                raise ApiError(404, C.TRANSACTION_NOT_FOUND_MESSAGE)
            return 200, {"transactionResponse": self.wire(txn)}, []

    def tokenize(self, oid: str, body: dict[str, Any]) -> Handled:
        data = envelope(body, "accountData")
        with self._store.lock:
            number = required_text(data, "cardNumber")
            expiry = required_text(data, "cardExpirationDate")
            external_id = required_text(data, "externalTransactionId")
            billing_name = optional_text(data, "billingName")
            postal_code = optional_text(data, "billingPostalCode")
            if not (number.isascii() and number.isdigit()) or not 12 <= len(number) <= 19:
                raise ApiError(400, "cardNumber must be 12 to 19 digits")
            if not MMYY.match(expiry):
                raise ApiError(400, "cardExpirationDate must be MMYY")
            security = data.get("cardSecurityCode")
            if security not in (None, "") and not (isinstance(security, str) and security.isascii() and security.isdigit() and 3 <= len(security) <= 4):
                raise ApiError(400, "cardSecurityCode must be 3 or 4 digits")
            self._book.check_new_external_id(oid, external_id)
            message = self._vault.behaviour(number, expiry)
            approved = message == C.APPROVED_MESSAGE
            card = self._vault.save_card(number, expiry)
            txn = self._book.new(
                oid,
                external_id,
                "CreditSaveCard",
                status="approved" if approved else "declined",
                result_message=message,
                amount_cents=None,
                approved_cents=0,
                card_id=card.card_id,
                entry_method="Keyed",
                billing_name=billing_name,
                avs_code=C.avs_code(postal_code),
                cvv_code=C.cvv_code(security or None),
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
        with self._store.lock:
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
            postbacks: list[dict[str, Any]] = []
            with self._store.saved_once():
                for item in requests:
                    _, answer, _ = self.tokenized_payment(oid, item, source="bulk")
                    postbacks.append(answer["transactionResponse"])
            return C.BULK_ACCEPTED_STATUS, {"accepted": len(requests)}, postbacks

    def wire(self, txn: Txn) -> dict[str, Any]:
        """The transaction as Gravity writes it, with its card's vault reference."""
        return wire(txn, self._vault.get(txn.card_id))

    def _refund(self, sale: Txn, amount: int, external_id: str) -> Txn:
        sale.refunded_cents += amount
        return self._book.new(
            sale.oid,
            external_id,
            "CreditReturn",
            status="approved",
            result_message=C.APPROVED_MESSAGE,
            amount_cents=amount,
            approved_cents=amount,
            card_id=sale.card_id,
            entry_method=sale.entry_method,
            parent_unique_trans_id=sale.unique_trans_id,
            reference=sale.reference,
        )

    def _answer(self, txn: Txn) -> Handled:
        self._store.save()
        return 200, {"transactionResponse": self.wire(txn)}, []


def _remaining(sale: Txn) -> int:
    """What can still be refunded of a sale: nothing once voided."""
    return 0 if sale.voided else sale.approved_cents - sale.refunded_cents
