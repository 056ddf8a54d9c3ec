"""Contract: saving cards and charging them, against the sandbox over real HTTP."""

from __future__ import annotations

import json

import httpx
import pytest

from gravity import conventions as C
from gravity.client import GravityClient
from gravity.errors import BadRequest, ExternalIdReused
from gravity.results import DeclineClass, DeclineReason, Outcome, TransactionType
from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from tests.gravity.conftest import MASTERCARD, OID, TOKEN, VISA, new_id, save_card, trans_id


async def test_tokenize_visa_and_mastercard(client: GravityClient) -> None:
    visa = await client.tokenize(card_number=VISA, exp_mmyy="1230", external_id=new_id(), security_code="123", billing_name="Ada Lovelace", postal_code="98101")
    assert visa.outcome is Outcome.APPROVED
    assert visa.transaction_type is TransactionType.CREDIT_SAVE_CARD
    assert (visa.masked_account, visa.card_brand, visa.expiry_mmyy, visa.entry_method) == ("************1111", "VS", "1230", "Keyed")
    assert visa.fingerprint and visa.card_ref == visa.unique_trans_id
    again = await client.tokenize(card_number=VISA, exp_mmyy="1230", external_id=new_id())
    assert again.fingerprint == visa.fingerprint and again.card_ref != visa.card_ref  # same card, new token
    master = await client.tokenize(card_number=MASTERCARD, exp_mmyy="0931", external_id=new_id())
    assert (master.outcome, master.card_brand, master.masked_account) == (Outcome.APPROVED, "MC", "************4444")
    assert master.fingerprint != visa.fingerprint


@pytest.mark.parametrize(
    ("number", "reason", "klass"),
    [
        ("4000000000009995", DeclineReason.INSUFFICIENT_FUNDS, DeclineClass.SOFT),
        ("4000000000000002", DeclineReason.DO_NOT_HONOR, DeclineClass.SOFT),
        ("4000000000000069", DeclineReason.EXPIRED_CARD, DeclineClass.HARD),
        ("4000000000000119", DeclineReason.LOST_OR_STOLEN, DeclineClass.HARD),
        ("4111111111111112", DeclineReason.INVALID_ACCOUNT, DeclineClass.HARD),  # fails Luhn
    ],
)
async def test_tokenize_test_cards_that_decline(client: GravityClient, number: str, reason: DeclineReason, klass: DeclineClass) -> None:
    result = await client.tokenize(card_number=number, exp_mmyy="1230", external_id=new_id())
    assert result.outcome is Outcome.DECLINED
    assert (result.decline_reason, result.decline_class) == (reason, klass)
    assert result.card_ref is None  # a declined save gives no token


async def test_tokenize_card_with_past_expiry_declines_expired(client: GravityClient) -> None:
    result = await client.tokenize(card_number=VISA, exp_mmyy="0120", external_id=new_id())
    assert (result.outcome, result.decline_reason) == (Outcome.DECLINED, DeclineReason.EXPIRED_CARD)


async def test_tokenize_bad_input_is_bad_request_without_card_data(client: GravityClient) -> None:
    with pytest.raises(BadRequest) as caught:
        await client.tokenize(card_number="4111111111111111", exp_mmyy="1330", external_id=new_id(), security_code="987")
    assert "MMYY" in str(caught.value)
    assert "4111111111111111" not in str(caught.value) and "987" not in str(caught.value)
    with pytest.raises(BadRequest):
        await client.tokenize(card_number="4111-1111", exp_mmyy="1230", external_id=new_id())


async def test_charge_approved(client: GravityClient, control: SandboxControl) -> None:
    card = await save_card(client)
    external_id = new_id()
    result = await client.charge_saved_card(card_ref=card, amount_cents=4599, external_id=external_id, reference="INV-1", billing_name="Ada", cashier_id="web")
    assert result.outcome is Outcome.APPROVED and result.approved
    assert (result.amount_cents, result.approved_cents, result.balance_cents) == (4599, 4599, None)
    assert result.transaction_type is TransactionType.CREDIT_SALE
    assert (result.external_transaction_id, result.reference, result.result_message) == (external_id, "INV-1", "Approved")
    assert result.masked_account == "************1111" and result.batch_number == "1" and result.approval_number
    assert result.decline_reason is None and result.decline_class is None
    assert await client.lookup(external_id) == result
    [row] = [t for t in control.transactions(OID) if t["external_transaction_id"] == external_id]
    assert (row["amount_cents"], row["amount"], row["status"]) == (4599, "45.99", "approved")


@pytest.mark.parametrize("reason", [r for r in DeclineReason if r is not DeclineReason.CANCELLED])
async def test_each_scripted_decline_reason(client: GravityClient, control: SandboxControl, reason: DeclineReason) -> None:
    card = await save_card(client)
    control.decline_next(card, reason, count=2)
    for _ in range(2):
        result = await client.charge_saved_card(card_ref=card, amount_cents=1000, external_id=new_id())
        assert result.outcome is Outcome.DECLINED and not result.approved
        assert result.decline_reason is reason
        assert result.decline_class is C.DECLINE_TABLE[C.DECLINE_MESSAGE[reason]][1]
        assert result.result_message == C.DECLINE_MESSAGE[reason]
        assert (result.amount_cents, result.approved_cents) == (1000, 0)
    after = await client.charge_saved_card(card_ref=card, amount_cents=1000, external_id=new_id())
    assert after.outcome is Outcome.APPROVED  # the script covered exactly two charges


async def test_card_that_declines_after_saving(client: GravityClient) -> None:
    card = await save_card(client, C.DECLINES_AFTER_SAVE_CARD)
    for _ in range(2):
        result = await client.charge_saved_card(card_ref=card, amount_cents=500, external_id=new_id())
        assert (result.outcome, result.decline_reason, result.decline_class) == (Outcome.DECLINED, DeclineReason.GENERIC, DeclineClass.SOFT)


async def test_expired_card(client: GravityClient, control: SandboxControl) -> None:
    card = await save_card(client)
    control.expire_card(card)
    result = await client.charge_saved_card(card_ref=card, amount_cents=500, external_id=new_id())
    assert (result.decline_reason, result.decline_class) == (DeclineReason.EXPIRED_CARD, DeclineClass.HARD)


async def test_partial_approval(client: GravityClient, control: SandboxControl) -> None:
    card = await save_card(client)
    control.partial_next(card, approved_cents=3000)
    result = await client.charge_saved_card(card_ref=card, amount_cents=5000, external_id=new_id())
    assert result.outcome is Outcome.PARTIAL and result.approved
    assert (result.amount_cents, result.approved_cents, result.balance_cents) == (5000, 3000, 2000)
    assert result.result_message == C.PARTIAL_MESSAGE and result.decline_reason is None


async def test_unknown_card_ref_and_bad_amount_are_bad_requests(client: GravityClient) -> None:
    with pytest.raises(BadRequest, match="uniqueTransId not found"):
        await client.charge_saved_card(card_ref="nope", amount_cents=100, external_id=new_id())
    card = await save_card(client)
    with pytest.raises(BadRequest, match="greater than zero"):
        await client.charge_saved_card(card_ref=card, amount_cents=0, external_id=new_id())


async def test_card_of_another_merchant_is_unknown(gravity_sandbox: SandboxServer, client: GravityClient) -> None:
    from tests.gravity.conftest import OTHER_OID, OTHER_TOKEN

    card = await save_card(client)
    async with GravityClient(gravity_sandbox.base_url, OTHER_OID, OTHER_TOKEN) as other:
        with pytest.raises(BadRequest, match="uniqueTransId not found"):
            await other.charge_saved_card(card_ref=card, amount_cents=100, external_id=new_id())


async def test_lookup_unknown_is_none(client: GravityClient) -> None:
    assert await client.lookup(new_id()) is None


async def test_reused_external_id_is_refused(client: GravityClient) -> None:
    card = await save_card(client)
    used = new_id()
    sale = await client.charge_saved_card(card_ref=card, amount_cents=900, external_id=used)
    with pytest.raises(ExternalIdReused):  # same id on another endpoint (its own idempotency space)
        await client.refund(unique_trans_id=trans_id(sale), amount_cents=100, external_id=used)
    saved_id = new_id()
    await client.tokenize(card_number=VISA, exp_mmyy="1230", external_id=saved_id)
    with pytest.raises(ExternalIdReused):
        await client.charge_saved_card(card_ref=card, amount_cents=900, external_id=saved_id)


async def test_wire_format_matches_the_spec(gravity_sandbox: SandboxServer, client: GravityClient) -> None:
    """Raw HTTP: envelopes, camelCase, string money, string resultStatus, as the spec says."""
    card = await save_card(client)
    external_id = new_id()
    body = {"transactionData": {"uniqueTransId": card, "amount": "12.30", "externalTransactionId": external_id}}
    async with httpx.AsyncClient(base_url=gravity_sandbox.base_url, headers={"Authorization": f"Bearer {TOKEN}"}) as raw:
        answer = await raw.put(f"/orgs/{OID}/transactions/tokenizedPayment", json=body)
        assert answer.status_code == 200
        data = answer.json()["transactionResponse"]
        assert data["resultStatus"] == "true" and data["amount"] == "12.30" and data["amountProcessed"] == "12.30"
        assert data["amountBalance"] == "" and data["isPartialApproval"] == "false"
        assert {
            "externalTransactionId",
            "uniqueTransId",
            "transactionType",
            "resultMessage",
            "approvalNumberResult",
            "maskedAccount",
            "accountCardType",
            "accountExpiryDate",
            "accountEntryMethod",
            "accountFingerprint",
            "batchNumber",
            "transactionReference",
        } <= data.keys()
        for wrong in ({"amount": 12.3}, {"amount": "12.3"}, {"amount": "1e3"}):
            bad = {"transactionData": {**body["transactionData"], **wrong, "externalTransactionId": new_id()}}
            refused = await raw.put(f"/orgs/{OID}/transactions/tokenizedPayment", json=bad)
            assert refused.status_code == 400 and "message" in refused.json()
        unwrapped = await raw.put(f"/orgs/{OID}/transactions/tokenizedPayment", content=json.dumps(body["transactionData"]))
        assert unwrapped.status_code == 400
        looked = await raw.get(f"/orgs/{OID}/transactions/{external_id}")
        assert looked.json()["transactionResponse"]["uniqueTransId"] == data["uniqueTransId"]
