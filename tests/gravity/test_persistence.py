"""The sandbox keeps its state in a JSON file so a demo can restart it; card numbers never go there."""

from __future__ import annotations

from pathlib import Path

from gravity.client import GravityClient
from gravity.results import Outcome
from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from tests.gravity.conftest import OID, TOKEN, VISA, new_id


async def test_state_survives_a_restart(tmp_path: Path) -> None:
    state_file = tmp_path / "sandbox.json"
    sale_id, pending_id = new_id(), new_id()
    with SandboxServer({OID: TOKEN}, state_file=state_file, log_level="critical") as first:
        async with GravityClient(first.base_url, OID, TOKEN) as gravity:
            saved = await gravity.tokenize(card_number=VISA, exp_mmyy="1230", external_id=new_id(), security_code="456")
            card_ref = saved.card_ref
            assert card_ref is not None, saved
            sale = await gravity.charge_saved_card(card_ref=card_ref, amount_cents=1_999, external_id=sale_id)
            await gravity.start_terminal(device_name="front-desk-1", external_id=pending_id, amount_cents=500)
        with SandboxControl(first.base_url) as control:
            control.advance_clock(600)
            control.decline_next(card_ref, "do_not_honor")
    text = state_file.read_text()
    assert VISA not in text and '"456"' not in text  # a vault reference, not card data

    with SandboxServer({OID: TOKEN}, state_file=state_file, log_level="critical") as second:
        async with GravityClient(second.base_url, OID, TOKEN) as gravity:
            assert await gravity.lookup(sale_id) == sale
            replay = await gravity.charge_saved_card(card_ref=card_ref, amount_cents=1_999, external_id=sale_id)
            assert replay == sale  # the idempotency key store came back too
            scripted = await gravity.charge_saved_card(card_ref=card_ref, amount_cents=100, external_id=new_id())
            assert scripted.outcome is Outcome.DECLINED  # and the card's script
            assert {d.name: d.busy for d in await gravity.list_devices()}["front-desk-1"] is True
        with SandboxControl(second.base_url) as control:
            assert control.clock()["offset_s"] == 600
            control.present_card(OID, "front-desk-1")
            assert len(control.transactions(OID)) == 4


async def test_a_sandbox_saving_at_stop_writes_once_and_a_read_only_one_never(tmp_path: Path) -> None:
    state_file = tmp_path / "demo-sandbox.json"
    sale_id = new_id()
    with SandboxServer({OID: TOKEN}, state_file=state_file, save="stop", log_level="critical") as running:
        async with GravityClient(running.base_url, OID, TOKEN) as gravity:
            saved = await gravity.tokenize(card_number=VISA, exp_mmyy="1230", external_id=new_id())
            assert saved.card_ref is not None, saved
            sale = await gravity.charge_saved_card(card_ref=saved.card_ref, amount_cents=2_500, external_id=sale_id)
        assert not state_file.exists()  # nothing written while it runs
    kept = state_file.read_text()

    with SandboxServer({OID: TOKEN}, state_file=state_file, save="never", log_level="critical") as reader:
        async with GravityClient(reader.base_url, OID, TOKEN) as gravity:
            assert await gravity.lookup(sale_id) == sale
            await gravity.charge_saved_card(card_ref=saved.card_ref, amount_cents=100, external_id=new_id())
    assert state_file.read_text() == kept  # the read-only look changed nothing in the file
