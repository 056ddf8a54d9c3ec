"""Contract: the sandbox writes every field of emergepay's transaction result, on the wire.

Read as raw JSON over HTTP (not through our parser), so the sandbox's shape is checked on its own:
a tip and a surcharge added at the terminal, AVS and CVV results of a keyed card, the cashier.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from gravity.client import GravityClient
from gravity.sandbox.control import SandboxControl, SandboxControlError
from gravity.sandbox.server import SandboxServer
from tests.gravity.conftest import OID, TOKEN, VISA, new_id

DEVICE = "front-1"


def _wire(server: SandboxServer, external_id: str) -> dict[str, Any]:
    """The lookup's `transactionResponse`, as raw JSON."""
    answer = httpx.get(f"{server.base_url}/orgs/{OID}/transactions/{external_id}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5.0)
    assert answer.status_code == 200, answer.text
    return answer.json()["transactionResponse"]


async def test_tip_and_surcharge_are_above_the_request(gravity_sandbox: SandboxServer, client: GravityClient, control: SandboxControl) -> None:
    external_id = new_id()
    await client.start_terminal(device_name=DEVICE, external_id=external_id, amount_cents=10_000)
    control.present_card(OID, DEVICE, tip_cents=1_500, surcharge_cents=300)
    wire = _wire(gravity_sandbox, external_id)
    assert (wire["amount"], wire["amountTipped"], wire["amountTaxed"], wire["amountProcessed"]) == ("100.00", "15.00", "3.00", "118.00")
    [row] = [t for t in control.transactions(OID) if t["external_transaction_id"] == external_id]
    assert (row["approved_cents"], row["tip_cents"], row["surcharge_cents"]) == (11_800, 1_500, 300)


async def test_no_tip_is_an_empty_money_field(gravity_sandbox: SandboxServer, client: GravityClient, control: SandboxControl) -> None:
    external_id = new_id()
    await client.start_terminal(device_name=DEVICE, external_id=external_id, amount_cents=2_000)
    control.present_card(OID, DEVICE)
    wire = _wire(gravity_sandbox, external_id)
    assert (wire["amountTipped"], wire["amountTaxed"], wire["amountProcessed"]) == ("", "", "20.00")
    assert (wire["avsResponseCode"], wire["cvvResponseCode"]) == ("", "")  # a tap checks neither


@pytest.mark.parametrize("outcome", ["decline", "partial"])
async def test_a_tip_needs_a_full_approval(client: GravityClient, control: SandboxControl, outcome: str) -> None:
    await client.start_terminal(device_name=DEVICE, external_id=new_id(), amount_cents=2_000)
    with pytest.raises(SandboxControlError, match="400"):
        control.present_card(OID, DEVICE, outcome, tip_cents=100)
    control.present_card(OID, DEVICE)  # the session still waits for a card


async def test_a_negative_tip_is_refused(client: GravityClient, control: SandboxControl) -> None:
    await client.start_terminal(device_name=DEVICE, external_id=new_id(), amount_cents=2_000)
    with pytest.raises(SandboxControlError, match="400"):
        control.present_card(OID, DEVICE, tip_cents=-1)


async def test_a_tipped_sale_refunds_up_to_what_it_took(client: GravityClient, control: SandboxControl) -> None:
    external_id = new_id()
    await client.start_terminal(device_name=DEVICE, external_id=external_id, amount_cents=1_000)
    control.present_card(OID, DEVICE, tip_cents=200)
    sale = await client.lookup(external_id)
    assert sale is not None and sale.unique_trans_id
    refund = await client.refund(unique_trans_id=sale.unique_trans_id, amount_cents=1_200, external_id=new_id())
    assert refund.approved_cents == 1_200


@pytest.mark.parametrize(
    ("postal", "cvv", "expected"),
    [
        ("98101", "123", ("Y", "Address and 5-digit ZIP match", "M", "Match")),
        ("00000", "000", ("N", "Neither address nor ZIP match", "N", "No match")),
        (None, None, ("", "", "", "")),
    ],
)
async def test_avs_and_cvv_of_a_keyed_card(
    gravity_sandbox: SandboxServer, client: GravityClient, postal: str | None, cvv: str | None, expected: tuple[str, ...]
) -> None:
    saved = await client.tokenize(card_number=VISA, exp_mmyy="1230", external_id=new_id(), security_code=cvv, postal_code=postal)
    assert saved.approved  # a mismatch is reported, not declined
    wire = _wire(gravity_sandbox, saved.external_transaction_id)
    assert (wire["avsResponseCode"], wire["avsResponseText"], wire["cvvResponseCode"], wire["cvvResponseText"]) == expected
    assert "cardSecurityCode" not in wire and VISA not in str(wire)


async def test_cashier_comes_back(gravity_sandbox: SandboxServer, client: GravityClient) -> None:
    saved = await client.tokenize(card_number=VISA, exp_mmyy="1230", external_id=new_id())
    external_id = new_id()
    await client.charge_saved_card(card_ref=saved.card_ref or "", amount_cents=500, external_id=external_id, cashier_id="front-desk-ana")
    wire = _wire(gravity_sandbox, external_id)
    assert wire["cashier"] == "front-desk-ana" and (wire["avsResponseCode"], wire["cvvResponseCode"]) == ("", "")
