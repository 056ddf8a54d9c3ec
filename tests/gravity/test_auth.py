"""Contract: a wrong token is 401 (BadCredentials), an OID the server was not given is 404 (NotFound),
and no error message ever carries the token, a card number or a security code."""

from __future__ import annotations

import pytest

from gravity.client import GravityClient
from gravity.errors import BadCredentials, NotFound, PermanentGravityError
from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from tests.gravity.conftest import OID, OTHER_OID, TOKEN, VISA, new_id

WRONG = "wrong-token-5d1b0c9e8f"


async def test_wrong_token_is_bad_credentials_for_every_call(gravity_sandbox: SandboxServer, control: SandboxControl) -> None:
    async with GravityClient(gravity_sandbox.base_url, OID, WRONG) as gravity:
        calls = [
            gravity.charge_saved_card(card_ref="x", amount_cents=100, external_id=new_id()),
            gravity.refund(unique_trans_id="x", amount_cents=100, external_id=new_id()),
            gravity.void(unique_trans_id="x", external_id=new_id()),
            gravity.lookup(new_id()),
            gravity.tokenize(card_number=VISA, exp_mmyy="1230", external_id=new_id(), security_code="321"),
            gravity.list_devices(),
            gravity.start_terminal(device_name="front-1", external_id=new_id(), amount_cents=100),
            gravity.cancel_terminal(device_name="front-1", external_id=new_id()),
        ]
        for call in calls:
            with pytest.raises(BadCredentials) as caught:
                await call
            text = str(caught.value)
            assert caught.value.status == 401 and isinstance(caught.value, PermanentGravityError)
            assert WRONG not in text and VISA not in text and "321" not in text
            assert WRONG not in repr(gravity)
    assert control.transactions() == []


async def test_a_token_is_only_good_for_its_own_oid(gravity_sandbox: SandboxServer) -> None:
    async with GravityClient(gravity_sandbox.base_url, OTHER_OID, TOKEN) as gravity:
        with pytest.raises(BadCredentials):
            await gravity.lookup(new_id())


async def test_unknown_oid_is_not_found_even_for_lookup(gravity_sandbox: SandboxServer) -> None:
    async with GravityClient(gravity_sandbox.base_url, "9999999999", TOKEN) as gravity:
        with pytest.raises(NotFound):  # never None: a wrong OID must not look like "never charged"
            await gravity.lookup(new_id())
        with pytest.raises(NotFound):
            await gravity.charge_saved_card(card_ref="x", amount_cents=100, external_id=new_id())
