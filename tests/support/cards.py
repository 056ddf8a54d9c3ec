"""Saving sandbox test cards the way the product does: tokenize at Gravity, keep the reference."""

from __future__ import annotations

import uuid

from sqlalchemy import Engine

from foundation.settings import SANDBOX_OID, SANDBOX_TOKEN
from gravity.client import GravityClient
from gravity.sandbox.server import SandboxServer
from tests.support.clinic import Clinic, add_card

APPROVES = "4111111111111111"
INSUFFICIENT_FUNDS = "4000000000009995"
SAVES_THEN_DECLINES = "4000000000000341"


async def save_card(
    engine: Engine, server: SandboxServer, clinic: Clinic, *, number: str = APPROVES, exp_month: int = 12, exp_year: int = 2030, default: bool = True
) -> tuple[str, str]:
    """Tokenize `number` at the sandbox and store the saved card; returns (card id, gravity ref)."""
    async with GravityClient(server.base_url, SANDBOX_OID, SANDBOX_TOKEN) as gravity:
        result = await gravity.tokenize(card_number=number, exp_mmyy=f"{exp_month:02d}{exp_year % 100:02d}", external_id=str(uuid.uuid4()))
    assert result.card_ref is not None, result.result_message
    card_id = add_card(
        engine,
        clinic,
        gravity_ref=result.card_ref,
        masked=result.masked_account or "",
        brand=result.card_brand or "VS",
        exp_month=exp_month,
        exp_year=exp_year,
        fingerprint=result.fingerprint,
        default=default,
    )
    return card_id, result.card_ref
