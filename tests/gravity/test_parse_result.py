"""Parsing emergepay's transaction result (pure): amounts above the request, approvals that state no
amount, AVS/CVV/cashier, and the facts the books keep."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gravity.conventions import DeclineClass, DeclineReason
from gravity.results import Outcome, parse_transaction

SENSITIVE = ("4111111111111111", "cardNumber", "cardSecurityCode", "securityCode")


def _approval(**fields: Any) -> dict[str, Any]:
    base = {
        "externalTransactionId": "e-1",
        "uniqueTransId": "u-1",
        "transactionType": "CreditSale",
        "resultStatus": "true",
        "resultMessage": "Approved",
    }
    return {**base, **fields}


def test_an_approval_stating_no_amount_is_flagged() -> None:
    result = parse_transaction(_approval(amount="", amountProcessed=""))
    assert result.outcome is Outcome.APPROVED
    assert (result.approved_cents, result.amount_stated) == (0, False)


def test_an_approval_missing_both_amount_keys_is_flagged() -> None:
    assert parse_transaction(_approval()).amount_stated is False


def test_stated_amounts_are_flagged_as_stated() -> None:
    assert parse_transaction(_approval(amount="25.00", amountProcessed="")).amount_stated is True
    assert parse_transaction(_approval(amount="", amountProcessed="25.00")).amount_stated is True
    declined = parse_transaction(_approval(resultStatus="false", resultMessage="Do Not Honor"))
    assert (declined.approved_cents, declined.amount_stated) == (0, True)  # a decline states it took nothing


def test_tip_and_surcharge_are_read_in_cents() -> None:
    result = parse_transaction(_approval(amount="100.00", amountTipped="15.00", amountTaxed="3.00", amountProcessed="118.00"))
    assert (result.amount_cents, result.tip_cents, result.surcharge_cents, result.approved_cents) == (10_000, 1_500, 300, 11_800)


def test_without_amount_processed_the_tip_and_surcharge_are_added_to_the_amount() -> None:
    result = parse_transaction(_approval(amount="100.00", amountTipped="15.00", amountTaxed="3.00"))
    assert (result.approved_cents, result.amount_stated) == (11_800, True)


def test_absent_tip_and_surcharge_are_zero() -> None:
    result = parse_transaction(_approval(amount="20.00", amountProcessed="20.00", amountTipped="", amountTaxed=""))
    assert (result.tip_cents, result.surcharge_cents) == (0, 0)


def test_partial_without_amount_processed_uses_the_balance_or_says_unstated() -> None:
    partial = {"isPartialApproval": "true", "resultMessage": "Partially Approved", "amount": "100.00"}
    from_balance = parse_transaction(_approval(**partial, amountBalance="40.00"))
    assert (from_balance.outcome, from_balance.approved_cents, from_balance.amount_stated) == (Outcome.PARTIAL, 6_000, True)
    unstated = parse_transaction(_approval(**partial))
    assert (unstated.approved_cents, unstated.amount_stated, unstated.balance_cents) == (0, False, None)


def test_avs_cvv_and_cashier_are_read() -> None:
    result = parse_transaction(
        _approval(
            amount="5.00",
            avsResponseCode="Y",
            avsResponseText="Address and 5-digit ZIP match",
            cvvResponseCode="M",
            cvvResponseText="Match",
            cashier="front-desk-ana",
        )
    )
    assert (result.avs_response_code, result.avs_response_text) == ("Y", "Address and 5-digit ZIP match")
    assert (result.cvv_response_code, result.cvv_response_text, result.cashier) == ("M", "Match", "front-desk-ana")


def test_empty_avs_and_cvv_are_none() -> None:
    result = parse_transaction(_approval(amount="5.00", avsResponseCode="", cvvResponseCode="", cashier=""))
    assert (result.avs_response_code, result.cvv_response_code, result.cashier) == (None, None, None)


def test_facts_hold_every_reported_field_as_json() -> None:
    wire = _approval(
        amount="100.00",
        amountProcessed="118.00",
        amountTipped="15.00",
        amountTaxed="3.00",
        approvalNumberResult="123456",
        maskedAccount="************1111",
        accountCardType="VS",
        accountExpiryDate="1230",
        accountEntryMethod="Chip",
        accountFingerprint="fp-1",
        batchNumber="7",
        transactionReference="INV-1",
        billingName="Dana Reyes",
        avsResponseCode="Y",
        avsResponseText="Address and 5-digit ZIP match",
        cvvResponseCode="M",
        cvvResponseText="Match",
        cashier="front-desk-ana",
        transactionDate="2025-01-02T03:04:05+00:00",
    )
    facts = parse_transaction(wire).facts()
    assert json.loads(json.dumps(facts)) == facts  # plain JSON values, enums as strings
    assert facts == {
        "outcome": "approved",
        "external_transaction_id": "e-1",
        "unique_trans_id": "u-1",
        "transaction_type": "CreditSale",
        "amount_cents": 10_000,
        "approved_cents": 11_800,
        "result_message": "Approved",
        "masked_account": "************1111",
        "card_brand": "VS",
        "expiry_mmyy": "1230",
        "fingerprint": "fp-1",
        "entry_method": "Chip",
        "batch_number": "7",
        "reference": "INV-1",
        "approval_number": "123456",
        "amount_stated": True,
        "decline_known": True,
        "tip_cents": 1_500,
        "surcharge_cents": 300,
        "avs_response_code": "Y",
        "avs_response_text": "Address and 5-digit ZIP match",
        "cvv_response_code": "M",
        "cvv_response_text": "Match",
        "cashier": "front-desk-ana",
        "billing_name": "Dana Reyes",
        "transaction_date": "2025-01-02T03:04:05+00:00",
    }


def test_facts_of_a_decline_name_its_reason() -> None:
    facts = parse_transaction(_approval(resultStatus="false", resultMessage="Expired Card", amount="9.00")).facts()
    assert (facts["outcome"], facts["decline_reason"], facts["decline_class"], facts["approved_cents"]) == ("declined", "expired_card", "hard", 0)
    assert "balance_cents" not in facts  # not reported, so not a fact


def test_facts_never_carry_card_data_even_if_the_gateway_sent_it() -> None:
    wire = _approval(
        amount="5.00",
        maskedAccount="4111111111111111",
        cardNumber="4111111111111111",
        cardSecurityCode="123",
        securityCode="123",
    )
    result = parse_transaction(wire)
    assert result.masked_account == "************1111"
    text = json.dumps(result.facts())
    assert not any(secret in text for secret in SENSITIVE) and '"123"' not in text


@pytest.mark.parametrize(
    ("message", "reason", "decline_class", "known"),
    [
        ("Insufficient Funds", DeclineReason.INSUFFICIENT_FUNDS, DeclineClass.SOFT, True),
        ("DECLINED - NOT SUFFICIENT FUNDS", DeclineReason.INSUFFICIENT_FUNDS, DeclineClass.SOFT, True),
        ("05: Do not honor", DeclineReason.DO_NOT_HONOR, DeclineClass.SOFT, True),
        ("Exceeds withdrawal limit", DeclineReason.EXCEEDS_LIMIT, DeclineClass.SOFT, True),
        ("Expired card", DeclineReason.EXPIRED_CARD, DeclineClass.HARD, True),
        ("Lost card, pick up", DeclineReason.LOST_OR_STOLEN, DeclineClass.HARD, True),
        ("Stolen Card", DeclineReason.LOST_OR_STOLEN, DeclineClass.HARD, True),
        ("Closed account", DeclineReason.CLOSED_ACCOUNT, DeclineClass.HARD, True),
        ("Restricted card", DeclineReason.RESTRICTED_CARD, DeclineClass.HARD, True),
        ("Transaction not permitted to cardholder", DeclineReason.NOT_PERMITTED, DeclineClass.HARD, True),
        ("Stop payment order", DeclineReason.STOP_PAYMENT, DeclineClass.HARD, True),
        ("Revocation of all authorizations", DeclineReason.REVOKED, DeclineClass.HARD, True),
        ("Security violation", DeclineReason.SECURITY_VIOLATION, DeclineClass.HARD, True),
        ("Declined - Do Not Try Again", DeclineReason.DO_NOT_TRY_AGAIN, DeclineClass.HARD, True),
        ("Something the issuer made up", DeclineReason.GENERIC, DeclineClass.SOFT, False),
    ],
)
def test_processor_decline_texts_are_classified_and_unknown_ones_flagged(message: str, reason: DeclineReason, decline_class: DeclineClass, known: bool) -> None:
    result = parse_transaction({"resultStatus": "false", "resultMessage": message, "externalTransactionId": "x"})
    assert (result.decline_reason, result.decline_class, result.decline_known) == (reason, decline_class, known)
