"""A transaction written out: as Gravity answers and posts it back, and as a row for reconciliation."""

from __future__ import annotations

from typing import Any

from foundation.money import to_dollar_string
from gravity import conventions as C
from gravity.sandbox.records import Card, Txn


def wire(txn: Txn, card: Card | None) -> dict[str, Any]:
    """The transaction as Gravity writes it: camelCase, string money, string booleans."""
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


def reconciliation_row(txn: Txn) -> dict[str, Any]:
    """The transaction in cents and dollars, for reconciling a ledger against the gateway to the cent."""
    amount = txn.amount_cents
    return {
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
    }
