"""Contract: a tip or surcharge approval, AVS/CVV and the cashier come back through our client (the
sandbox over real HTTP, lookup and postback), in cents and as storable facts."""

from __future__ import annotations

import json

from gravity.client import GravityClient
from gravity.results import Outcome
from gravity.sandbox.control import SandboxControl
from tests.gravity.conftest import OID, VISA, PostbackReceiver, new_id, wait_until

DEVICE = "front-1"


async def test_tip_and_surcharge_approval_through_lookup_and_postback(client: GravityClient, control: SandboxControl, receiver: PostbackReceiver) -> None:
    external_id = new_id()
    await client.start_terminal(device_name=DEVICE, external_id=external_id, amount_cents=10_000, reference="INV-42")
    control.present_card(OID, DEVICE, tip_cents=1_500, surcharge_cents=300)
    result = await client.lookup(external_id)
    assert result is not None and result.outcome is Outcome.APPROVED
    assert (result.amount_cents, result.tip_cents, result.surcharge_cents, result.approved_cents, result.amount_stated) == (10_000, 1_500, 300, 11_800, True)
    await wait_until(lambda: external_id in receiver.results)
    assert receiver.results[external_id] == result
    facts = result.facts()
    assert (facts["approved_cents"], facts["tip_cents"], facts["surcharge_cents"], facts["reference"]) == (11_800, 1_500, 300, "INV-42")
    assert json.loads(json.dumps(facts)) == facts


async def test_avs_cvv_and_cashier_round_trip(client: GravityClient) -> None:
    saved = await client.tokenize(card_number=VISA, exp_mmyy="1230", external_id=new_id(), security_code="731", postal_code="98101", billing_name="Dana Reyes")
    found = await client.lookup(saved.external_transaction_id)
    assert found == saved
    assert (saved.avs_response_code, saved.avs_response_text) == ("Y", "Address and 5-digit ZIP match")
    assert (saved.cvv_response_code, saved.cvv_response_text) == ("M", "Match")
    sale_id = new_id()
    sale = await client.charge_saved_card(card_ref=saved.card_ref or "", amount_cents=4_200, external_id=sale_id, cashier_id="front-desk-ana")
    looked_up = await client.lookup(sale_id)
    assert sale.cashier == "front-desk-ana" and looked_up == sale
    assert (sale.avs_response_code, sale.cvv_response_code) == (None, None)  # a card-on-file charge checks neither
    facts = sale.facts()
    assert facts["cashier"] == "front-desk-ana" and facts["masked_account"] == "************1111"
    for reported in (facts, saved.facts()):
        assert VISA not in json.dumps(reported) and "731" not in {str(value) for value in reported.values()}


async def test_avs_and_cvv_mismatch_is_reported_not_declined(client: GravityClient) -> None:
    saved = await client.tokenize(card_number=VISA, exp_mmyy="1230", external_id=new_id(), security_code="000", postal_code="00000")
    assert saved.approved
    assert (saved.avs_response_code, saved.cvv_response_code, saved.cvv_response_text) == ("N", "N", "No match")
