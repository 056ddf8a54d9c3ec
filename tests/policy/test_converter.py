"""The engine's data converter: pydantic's wire format, with type adapters built once per process."""

from __future__ import annotations

from datetime import UTC, date, datetime

from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter, pydantic_data_converter

from foundation.contracts import (
    ChargeOutcome,
    ChargeResult,
    CycleOutcome,
    CycleRecord,
    NotCharged,
    OpenInvoice,
    PlanTerms,
    SubscriptionInput,
    SubscriptionSetup,
    SubscriptionState,
    SubscriptionStatus,
    WaitingFor,
)
from foundation.converter import data_converter


def _input() -> SubscriptionInput:
    plan = PlanTerms("plan_1", 4_500, 0, 1, 12, True, [3, 7, 14], "suspend", "prorate", "refund_unused")
    setup = SubscriptionSetup("sub_1", "cli_1", "loc_1", "pet_1", "America/Chicago", date(2027, 1, 31), 540)
    return SubscriptionInput(setup, SubscriptionState(status=SubscriptionStatus.ACTIVE, plan=plan, card_id="card_1"))


def test_every_payload_converter_shares_one_type_adapter_per_type() -> None:
    """The worker makes a payload converter per workflow run; they must not rebuild schemas."""
    first, second = data_converter._new_payload_converter(), data_converter._new_payload_converter()
    payloads = first.to_payloads([_input()])
    first.from_payloads(payloads, [SubscriptionInput])
    misses = _json_converter()._type_adapter.cache_info().misses
    assert second.from_payloads(payloads, [SubscriptionInput]) == [_input()]
    assert _json_converter()._type_adapter.cache_info().misses == misses  # built by `first`, reused


def test_the_wire_format_is_temporal_pydantic_converter_s() -> None:
    """Histories and clients using Temporal's own pydantic converter read ours, and back."""
    ours, theirs = data_converter.payload_converter, pydantic_data_converter.payload_converter
    outcome = ChargeOutcome("inv_1", ChargeResult.PAID, 0, charged_cents=4_500, external_transaction_id="ext_1")
    values = [_input(), outcome, datetime(2027, 1, 31, 15, tzinfo=UTC)]
    types = [SubscriptionInput, ChargeOutcome, datetime]
    assert theirs.from_payloads(ours.to_payloads(values), types) == values
    assert ours.from_payloads(theirs.to_payloads(values), types) == values
    assert ours.to_payloads(values) == theirs.to_payloads(values)


def _json_converter() -> PydanticJSONPlainPayloadConverter:
    from foundation import converter

    return converter._SHARED_JSON


def test_statuses_cross_the_boundary_as_their_strings() -> None:
    """A status is a StrEnum member in code and its plain string on the wire: a payload recorded
    before the enums (plain strings) encodes to the same bytes and decodes to the members."""
    converter = data_converter.payload_converter
    members = ChargeOutcome("inv_1", ChargeResult.NOT_CHARGED, 4_500, not_charged_reason=NotCharged.IN_PROGRESS)
    plain = ChargeOutcome("inv_1", "not_charged", 4_500, not_charged_reason="collection_in_progress")  # type: ignore[arg-type]  # plain strings, as an old payload holds
    payloads = converter.to_payloads([members])
    assert payloads == converter.to_payloads([plain])
    assert b'"outcome":"not_charged"' in payloads[0].data and b'"not_charged_reason":"collection_in_progress"' in payloads[0].data
    decoded = converter.from_payloads(payloads, [ChargeOutcome])[0]
    assert decoded == plain and decoded.outcome is ChargeResult.NOT_CHARGED and decoded.not_charged_reason is NotCharged.IN_PROGRESS


def test_a_workflow_state_keeps_its_statuses_across_continue_as_new() -> None:
    state = SubscriptionState(
        status=SubscriptionStatus.PAST_DUE,
        open_invoices=[OpenInvoice("inv_1", 0, date(2027, 1, 31), datetime(2027, 1, 31, 15, tzinfo=UTC), 4_500, waiting_for=WaitingFor.NEW_CARD)],
        history=[CycleRecord(0, date(2027, 1, 31), "inv_1", CycleOutcome.DECLINED, "do_not_honor")],
    )
    payloads = data_converter.payload_converter.to_payloads([state])
    assert b'"status":"past_due"' in payloads[0].data and b'"waiting_for":"new_card"' in payloads[0].data
    (decoded,) = data_converter.payload_converter.from_payloads(payloads, [SubscriptionState])
    assert decoded == state and decoded.status is SubscriptionStatus.PAST_DUE
    assert decoded.open_invoices[0].waiting_for is WaitingFor.NEW_CARD and decoded.history[0].outcome is CycleOutcome.DECLINED
