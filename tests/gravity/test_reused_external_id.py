"""Contract: "externalTransactionId already used" while the lookup cannot find it is an unknown outcome.

The id was used at Gravity, so the sale, refund or void it names may exist: the client must raise the
retryable `UnknownOutcome` (same id next time), never a permanent error that lets a caller mark the
payment failed or pick a new id. Driven over real HTTP: a lost answer commits the transaction, the
sandbox clock outlives the 24 h idempotency key, and injected lookup faults hide the transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

from gravity.client import GravityClient
from gravity.errors import PermanentGravityError, UnknownOutcome
from gravity.results import TransactionResult
from gravity.sandbox.control import SandboxControl
from tests.gravity.conftest import OID, new_id, save_card

LOOKUPS = 6  # the `client` fixture's safe_lookup_attempts
PAST_THE_IDEMPOTENCY_KEY = 24 * 3600 + 60


@dataclass(frozen=True)
class Operation:
    """One kind of write, as the plain call (raises on a lost answer) and the safe call."""

    endpoint: str
    plain: Callable[[str], Awaitable[TransactionResult]]
    safe: Callable[[str, bool], Awaitable[TransactionResult]]


async def _operation(client: GravityClient, kind: str) -> Operation:
    card = await save_card(client)
    if kind == "charge":
        return Operation(
            "tokenizedPayment",
            lambda e: client.charge_saved_card(card_ref=card, amount_cents=2500, external_id=e),
            lambda e, first: client.charge_saved_card_safely(card_ref=card, amount_cents=2500, external_id=e, look_up_first=first),
        )
    sale = await client.charge_saved_card(card_ref=card, amount_cents=5000, external_id=new_id())
    sale_id = sale.unique_trans_id or ""
    if kind == "refund":
        return Operation(
            "tokenizedRefund",
            lambda e: client.refund(unique_trans_id=sale_id, amount_cents=1000, external_id=e),
            lambda e, first: client.refund_safely(unique_trans_id=sale_id, amount_cents=1000, external_id=e, look_up_first=first),
        )
    return Operation(
        "void",
        lambda e: client.void(unique_trans_id=sale_id, external_id=e),
        lambda e, first: client.void_safely(unique_trans_id=sale_id, external_id=e, look_up_first=first),
    )


def _count(control: SandboxControl, external_id: str) -> int:
    return sum(1 for t in control.transactions(OID) if t["external_transaction_id"] == external_id)


async def _used_but_forgotten(client: GravityClient, control: SandboxControl, kind: str) -> tuple[str, Operation]:
    """An id whose first send was committed with its answer lost, and whose idempotency key expired."""
    operation = await _operation(client, kind)
    external_id = new_id()
    control.inject_fault(operation.endpoint, "lost")
    with pytest.raises(UnknownOutcome):
        await operation.plain(external_id)
    assert _count(control, external_id) == 1
    control.advance_clock(PAST_THE_IDEMPOTENCY_KEY)
    return external_id, operation


@pytest.mark.parametrize("kind", ["charge", "refund", "void"])
async def test_reused_id_with_lookups_not_finding_it_is_unknown_outcome(client: GravityClient, control: SandboxControl, kind: str) -> None:
    external_id, operation = await _used_but_forgotten(client, control, kind)
    control.inject_fault("lookup", "404", count=LOOKUPS)  # a lagging index: "not found" although it exists
    with pytest.raises(UnknownOutcome) as caught:
        await operation.safe(external_id, False)
    assert not isinstance(caught.value, PermanentGravityError)
    assert caught.value.external_id == external_id
    assert _count(control, external_id) == 1
    # Temporal's retry of the same attempt (same id, look up first) finds what the id did.
    found = await operation.safe(external_id, True)
    assert found.external_transaction_id == external_id and found.approved
    assert _count(control, external_id) == 1


@pytest.mark.parametrize("kind", ["charge", "refund", "void"])
async def test_reused_id_with_lookups_failing_is_unknown_outcome(client: GravityClient, control: SandboxControl, kind: str) -> None:
    external_id, operation = await _used_but_forgotten(client, control, kind)
    control.inject_fault("lookup", "500", count=LOOKUPS)
    with pytest.raises(UnknownOutcome) as caught:
        await operation.safe(external_id, False)
    assert caught.value.external_id == external_id
    assert _count(control, external_id) == 1
