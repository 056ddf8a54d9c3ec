"""Contract: idempotent replay and its 409s, each injected fault, and the safe path for unknown outcomes.

The headline property: a lost answer followed by the client's safe path never produces a second
charge, counted in the sandbox's own list of committed transactions.
"""

from __future__ import annotations

import asyncio

import pytest

from gravity.client import GravityClient
from gravity.errors import (
    ConnectionFailed,
    ExternalIdReused,
    IdempotencyConflict,
    RateLimited,
    ReadInterrupted,
    ServerError,
    TransientGravityError,
    UnknownOutcome,
)
from gravity.results import Outcome, TransactionType
from gravity.sandbox.control import SandboxControl, SandboxControlError
from gravity.sandbox.server import SandboxServer
from tests.gravity.conftest import OID, TOKEN, new_id, save_card, trans_id


def _count(control: SandboxControl, external_id: str) -> int:
    return sum(1 for t in control.transactions(OID) if t["external_transaction_id"] == external_id)


def _sales(control: SandboxControl) -> int:
    return sum(1 for t in control.transactions(OID) if t["transaction_type"] == "CreditSale")


def _fast_client(server: SandboxServer, timeout: float = 0.3, attempts: int = 8) -> GravityClient:
    return GravityClient(server.base_url, OID, TOKEN, timeout=timeout, safe_lookup_attempts=attempts, safe_lookup_backoff_s=0.05)


async def test_identical_replay_returns_the_original_answer(client: GravityClient, control: SandboxControl) -> None:
    card = await save_card(client)
    external_id = new_id()
    first = await client.charge_saved_card(card_ref=card, amount_cents=1234, external_id=external_id)
    again = await client.charge_saved_card(card_ref=card, amount_cents=1234, external_id=external_id)
    assert again == first  # same uniqueTransId, same approval number: the stored answer
    assert _count(control, external_id) == 1


async def test_replay_with_another_body_is_409(client: GravityClient, control: SandboxControl) -> None:
    card = await save_card(client)
    external_id = new_id()
    await client.charge_saved_card(card_ref=card, amount_cents=1234, external_id=external_id)
    with pytest.raises(IdempotencyConflict) as caught:
        await client.charge_saved_card(card_ref=card, amount_cents=9999, external_id=external_id)
    assert isinstance(caught.value, TransientGravityError) and caught.value.status == 409
    assert _count(control, external_id) == 1


async def test_replay_while_the_original_runs_is_409(gravity_sandbox: SandboxServer, client: GravityClient, control: SandboxControl) -> None:
    card = await save_card(client)
    external_id = new_id()
    control.inject_fault("tokenizedPayment", "slow", delay_s=0.6)
    original = asyncio.create_task(client.charge_saved_card(card_ref=card, amount_cents=700, external_id=external_id))
    await asyncio.sleep(0.2)
    with pytest.raises(IdempotencyConflict, match="in progress"):
        await client.charge_saved_card(card_ref=card, amount_cents=700, external_id=external_id)
    result = await original
    assert result.approved and _count(control, external_id) == 1


async def test_a_safe_retry_while_the_original_runs_waits_for_its_answer(client: GravityClient, control: SandboxControl) -> None:
    """A worker died mid-request and the activity's next try arrives while the gateway still runs
    the first: the try waits for that answer by its id instead of failing on the 409 (which, under
    a retry policy, would spend an attempt a moment until the first request ends)."""
    card = await save_card(client)
    external_id = new_id()
    control.inject_fault("tokenizedPayment", "slow", delay_s=1.5)
    original = asyncio.create_task(client.charge_saved_card(card_ref=card, amount_cents=700, external_id=external_id))
    await asyncio.sleep(0.2)
    retry = await client.charge_saved_card_safely(card_ref=card, amount_cents=700, external_id=external_id, look_up_first=True)
    first = await original
    assert retry.approved and retry.unique_trans_id == first.unique_trans_id
    assert _count(control, external_id) == 1


async def test_injected_500_is_transient_and_not_processed(client: GravityClient, control: SandboxControl) -> None:
    card = await save_card(client)
    external_id = new_id()
    control.inject_fault("tokenizedPayment", "500")
    with pytest.raises(ServerError) as caught:
        await client.charge_saved_card(card_ref=card, amount_cents=500, external_id=external_id)
    assert isinstance(caught.value, TransientGravityError) and caught.value.status == 500
    assert _count(control, external_id) == 0
    retried = await client.charge_saved_card(card_ref=card, amount_cents=500, external_id=external_id)  # same id
    assert retried.approved and _count(control, external_id) == 1


async def test_injected_429_is_rate_limited(client: GravityClient, control: SandboxControl) -> None:
    control.inject_fault("lookup", "429", count=2)
    for _ in range(2):
        with pytest.raises(RateLimited) as caught:
            await client.lookup(new_id())
        assert caught.value.retry_after == 1 and isinstance(caught.value, TransientGravityError)
    assert await client.lookup(new_id()) is None  # the fault covered exactly two calls


async def test_slow_answer_is_unknown_outcome(gravity_sandbox: SandboxServer, client: GravityClient, control: SandboxControl) -> None:
    card = await save_card(client)
    external_id = new_id()
    control.inject_fault("tokenizedPayment", "slow", delay_s=0.6)
    async with _fast_client(gravity_sandbox) as fast:
        with pytest.raises(UnknownOutcome) as caught:
            await fast.charge_saved_card(card_ref=card, amount_cents=800, external_id=external_id)
        assert caught.value.external_id == external_id
        # The sandbox commits anyway (a slow gateway is not a failed one): the safe path finds it.
        found = await fast.find(external_id)
    assert found is not None and found.approved and _count(control, external_id) == 1


async def test_slow_answer_then_safe_path_returns_the_committed_charge(gravity_sandbox: SandboxServer, client: GravityClient, control: SandboxControl) -> None:
    card = await save_card(client)
    external_id = new_id()
    control.inject_fault("tokenizedPayment", "slow", delay_s=0.5)
    async with _fast_client(gravity_sandbox) as fast:
        result = await fast.charge_saved_card_safely(card_ref=card, amount_cents=800, external_id=external_id)
    assert result.approved and result.external_transaction_id == external_id
    assert _count(control, external_id) == 1


async def test_lost_answer_then_safe_path_never_charges_twice(client: GravityClient, control: SandboxControl) -> None:
    card = await save_card(client)
    external_id = new_id()
    control.inject_fault("tokenizedPayment", "lost")
    with pytest.raises(UnknownOutcome):
        await client.charge_saved_card(card_ref=card, amount_cents=2500, external_id=external_id)
    assert _count(control, external_id) == 1  # committed although the answer was lost

    other_id = new_id()
    before = _sales(control)
    control.inject_fault("tokenizedPayment", "lost")
    result = await client.charge_saved_card_safely(card_ref=card, amount_cents=2500, external_id=other_id, reference="INV-9")
    assert result.outcome is Outcome.APPROVED and result.reference == "INV-9"
    # A Temporal retry of the same attempt (look up first) returns the same charge again.
    again = await client.charge_saved_card_safely(card_ref=card, amount_cents=2500, external_id=other_id, look_up_first=True)
    assert again == result
    assert _count(control, other_id) == 1 and _sales(control) == before + 1
    [row] = [t for t in control.transactions(OID) if t["external_transaction_id"] == other_id]
    assert (row["amount_cents"], row["status"]) == (2500, "approved")


async def test_lost_answer_on_refund_and_void(client: GravityClient, control: SandboxControl) -> None:
    card = await save_card(client)
    sale = await client.charge_saved_card(card_ref=card, amount_cents=5000, external_id=new_id())
    refund_id, void_id = new_id(), new_id()
    control.inject_fault("tokenizedRefund", "lost")
    refund = await client.refund_safely(unique_trans_id=trans_id(sale), amount_cents=1000, external_id=refund_id)
    assert refund.transaction_type is TransactionType.CREDIT_RETURN and refund.approved_cents == 1000
    other = await client.charge_saved_card(card_ref=card, amount_cents=5000, external_id=new_id())
    control.inject_fault("void", "lost")
    void = await client.void_safely(unique_trans_id=trans_id(other), external_id=void_id)
    assert void.transaction_type is TransactionType.VOID
    assert _count(control, refund_id) == 1 and _count(control, void_id) == 1
    rows = {t["external_transaction_id"]: t for t in control.transactions(OID)}
    assert rows[sale.external_transaction_id]["refunded_cents"] == 1000


async def test_still_unknown_after_lookups_raises_again_and_the_retry_finds_it(
    gravity_sandbox: SandboxServer,
    client: GravityClient,
    control: SandboxControl,
) -> None:
    card = await save_card(client)
    external_id = new_id()
    control.inject_fault("tokenizedPayment", "slow", delay_s=1.0)
    async with _fast_client(gravity_sandbox, timeout=0.2, attempts=2) as fast:
        with pytest.raises(UnknownOutcome):  # not committed yet when the lookups give up
            await fast.charge_saved_card_safely(card_ref=card, amount_cents=600, external_id=external_id)
    await asyncio.sleep(1.0)
    retry = await client.charge_saved_card_safely(card_ref=card, amount_cents=600, external_id=external_id, look_up_first=True)
    assert retry.approved and _count(control, external_id) == 1


async def test_expired_idempotency_key_then_reuse_is_resolved_by_lookup(client: GravityClient, control: SandboxControl) -> None:
    card = await save_card(client)
    external_id = new_id()
    first = await client.charge_saved_card(card_ref=card, amount_cents=450, external_id=external_id)
    control.advance_clock(24 * 3600 + 60)  # the 24 h key store forgot the key; the id is still used
    with pytest.raises(ExternalIdReused):
        await client.charge_saved_card(card_ref=card, amount_cents=450, external_id=external_id)
    again = await client.charge_saved_card_safely(card_ref=card, amount_cents=450, external_id=external_id)
    assert again.unique_trans_id == first.unique_trans_id and _count(control, external_id) == 1


async def test_faults_on_lookup(client: GravityClient, control: SandboxControl) -> None:
    control.inject_fault("lookup", "500")
    with pytest.raises(ServerError):
        await client.lookup(new_id())
    control.inject_fault("lookup", "lost")
    with pytest.raises(ReadInterrupted):  # a read that lost its answer is simply repeated
        await client.lookup(new_id())


async def test_lookup_404_fault_hides_a_committed_transaction(client: GravityClient, control: SandboxControl) -> None:
    card = await save_card(client)
    sale = await client.charge_saved_card(card_ref=card, amount_cents=300, external_id=new_id())
    control.inject_fault("lookup", "404")
    assert await client.lookup(sale.external_transaction_id) is None
    assert await client.lookup(sale.external_transaction_id) == sale  # the fault covered one call


def test_404_fault_is_for_lookups_only(control: SandboxControl) -> None:
    with pytest.raises(SandboxControlError, match="400"):
        control.inject_fault("tokenizedPayment", "404")


async def test_faults_are_per_endpoint(client: GravityClient, control: SandboxControl) -> None:
    card = await save_card(client)
    control.inject_fault("tokenizedRefund", "500")
    sale = await client.charge_saved_card(card_ref=card, amount_cents=100, external_id=new_id())  # unaffected
    assert sale.approved and control.faults()[0]["endpoint"] == "tokenizedRefund"
    control.clear_faults()
    assert control.faults() == []


async def test_no_server_is_connection_failed() -> None:
    async with GravityClient("http://127.0.0.1:9/virtualterminal/v1", OID, TOKEN, timeout=1.0) as nowhere:
        with pytest.raises(ConnectionFailed) as caught:
            await nowhere.charge_saved_card(card_ref="x", amount_cents=100, external_id=new_id())
    assert isinstance(caught.value, TransientGravityError) and TOKEN not in str(caught.value)
