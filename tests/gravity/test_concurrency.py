"""The sandbox's state holds under concurrent requests: limits are enforced exactly, nothing is lost."""

from __future__ import annotations

import asyncio

from gravity.client import GravityClient
from gravity.errors import RefundExceedsRemaining
from gravity.sandbox.control import SandboxControl
from tests.gravity.conftest import OID, new_id, save_card, trans_id


async def test_concurrent_refunds_never_exceed_the_sale(client: GravityClient, control: SandboxControl) -> None:
    card = await save_card(client)
    sale = await client.charge_saved_card(card_ref=card, amount_cents=10_000, external_id=new_id())
    attempts = [client.refund(unique_trans_id=trans_id(sale), amount_cents=1_000, external_id=new_id()) for _ in range(25)]
    results = await asyncio.gather(*attempts, return_exceptions=True)
    approved = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, RefundExceedsRemaining)]
    assert (len(approved), len(refused)) == (10, 15)
    rows = {t["external_transaction_id"]: t for t in control.transactions(OID)}
    assert rows[sale.external_transaction_id]["refunded_cents"] == 10_000


async def test_concurrent_charges_are_all_recorded(client: GravityClient, control: SandboxControl) -> None:
    card = await save_card(client)
    ids = [new_id() for _ in range(40)]
    results = await asyncio.gather(*(client.charge_saved_card(card_ref=card, amount_cents=100 + i, external_id=e) for i, e in enumerate(ids)))
    assert all(r.approved for r in results)
    recorded = {t["external_transaction_id"]: t["amount_cents"] for t in control.transactions(OID)}
    assert all(recorded[e] == 100 + i for i, e in enumerate(ids))
