"""The workflow-facing GatewayResult: the new gateway facts reach it, cross Temporal's data converter
intact, and a payload written before they existed still decodes."""

from __future__ import annotations

import json
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter

from activities.terminal import gateway_result
from foundation.contracts import GatewayResult
from gravity.client import GravityClient
from gravity.results import parse_transaction
from gravity.sandbox.control import SandboxControl
from tests.gravity.conftest import OID, new_id

CONVERTER = DataConverter.default.payload_converter


def _round_trip(value: GatewayResult) -> GatewayResult:
    [payload] = CONVERTER.to_payloads([value])
    [decoded] = CONVERTER.from_payloads([payload], [GatewayResult])
    return decoded


def test_a_payload_from_before_the_new_fields_still_decodes() -> None:
    old: dict[str, Any] = {
        "external_transaction_id": "e-1",
        "outcome": "approved",
        "approved_cents": 2_500,
        "unique_trans_id": "u-1",
        "result_message": "Approved",
        "decline_reason": None,
        "decline_class": None,
        "masked_account": "************1111",
        "card_brand": "VS",
        "expiry_mmyy": "1230",
        "fingerprint": "fp",
    }
    payload = Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(old).encode())
    [decoded] = CONVERTER.from_payloads([payload], [GatewayResult])
    assert decoded == GatewayResult(**old)
    assert (decoded.amount_stated, decoded.tip_cents, decoded.surcharge_cents, decoded.facts) == (True, 0, 0, {})


def test_gateway_result_carries_the_new_facts_across_the_converter() -> None:
    parsed = parse_transaction(
        {
            "externalTransactionId": "e-2",
            "uniqueTransId": "u-2",
            "transactionType": "CreditSale",
            "resultStatus": "true",
            "resultMessage": "Approved",
            "amount": "100.00",
            "amountTipped": "15.00",
            "amountTaxed": "3.00",
            "amountProcessed": "118.00",
            "avsResponseCode": "Y",
            "avsResponseText": "Address and 5-digit ZIP match",
            "cvvResponseCode": "M",
            "cvvResponseText": "Match",
            "cashier": "front-desk-ana",
            "maskedAccount": "************1111",
        }
    )
    result = gateway_result(parsed)
    assert (result.approved_cents, result.tip_cents, result.surcharge_cents, result.amount_stated) == (11_800, 1_500, 300, True)
    assert (result.avs_response_code, result.avs_response_text, result.cvv_response_code, result.cvv_response_text, result.cashier) == (
        "Y",
        "Address and 5-digit ZIP match",
        "M",
        "Match",
        "front-desk-ana",
    )
    assert result.facts == parsed.facts() and result.facts["amount_stated"] is True
    assert _round_trip(result) == result


def test_an_approval_without_an_amount_reaches_the_workflow_flagged() -> None:
    parsed = parse_transaction({"externalTransactionId": "e-3", "resultStatus": "true", "resultMessage": "Approved"})
    result = _round_trip(gateway_result(parsed))
    assert (result.approved_cents, result.amount_stated, result.facts["amount_stated"]) == (0, False, False)


async def test_a_tipped_terminal_approval_from_the_sandbox_reaches_the_workflow(client: GravityClient, control: SandboxControl) -> None:
    external_id = new_id()
    await client.start_terminal(device_name="front-1", external_id=external_id, amount_cents=4_000)
    control.present_card(OID, "front-1", tip_cents=600)
    found = await client.lookup(external_id)
    assert found is not None
    result = _round_trip(gateway_result(found))
    assert (result.approved_cents, result.tip_cents, result.facts["amount_cents"], result.facts["tip_cents"]) == (4_600, 600, 4_000, 600)
