"""Every key and id `foundation.ids` derives, pinned to a literal: they are sent to Gravity, name
workflows and sit in UNIQUE columns, so a format that changes must fail here first."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

import pytest

from foundation import ids
from foundation.scopes import Actor

DAY = date(2027, 1, 31)
AT = datetime(2027, 3, 15, 14, 30, tzinfo=UTC)
# The externalTransactionId of `charge:sub_1:2027-01-31:1`: the row ids below derive from it.
EXT = "4566c59a-c239-5dcd-ab16-770384016637"

PINNED: list[tuple[str, Callable[[], str], str]] = [
    # attempt and business keys
    ("movement_key token", lambda: ids.movement_key(Actor("clinic-system"), "req_1"), "clinic-system:req_1"),
    ("movement_key settings", lambda: ids.movement_key(Actor("settings-token"), "req_1"), "req_1"),
    ("movement_key cli", lambda: ids.movement_key(Actor("cli:ana"), "req_1"), "req_1"),
    ("movement_key none", lambda: ids.movement_key(None, "req_1"), "req_1"),
    ("charge_key", lambda: ids.charge_key("sub_1", DAY, 1), "charge:sub_1:2027-01-31:1"),
    ("invoice_retry_key", lambda: ids.invoice_retry_key("inv_1", 2), "invoice:inv_1:2"),
    ("cycle_key", lambda: ids.cycle_key("sub_1", DAY), "cycle:sub_1:2027-01-31"),
    ("settlement_invoice_key", lambda: ids.settlement_invoice_key("sub_1"), "settlement:sub_1"),
    ("settlement_charge_key", lambda: ids.settlement_charge_key("sub_1"), "settlement:sub_1:1"),
    ("proration_invoice_key", lambda: ids.proration_invoice_key("sub_1", AT), "proration:sub_1:2027-03-15T14:30:00+00:00"),
    ("proration_charge_key", lambda: ids.proration_charge_key("sub_1", AT), "proration:sub_1:2027-03-15T14:30:00+00:00:1"),
    ("settlement_refund_prefix", lambda: ids.settlement_refund_prefix("sub_1"), "settlement-refund:sub_1"),
    ("settlement_refund_key first", lambda: ids.settlement_refund_key("sub_1", 0, "pay_1"), "settlement-refund:sub_1"),
    ("settlement_refund_key next", lambda: ids.settlement_refund_key("sub_1", 1, "pay_2"), "settlement-refund:sub_1:pay_2"),
    ("customer_refund_key", lambda: ids.customer_refund_key("pay_1", "req_1"), "customer:pay_1:req_1"),
    ("deposit_refund_key", lambda: ids.deposit_refund_key("dep_1", "req_1"), "deposit-refund:dep_1:req_1"),
    ("invoice_cancellation_key", lambda: ids.invoice_cancellation_key("inv_1", "pay_1"), "cancel:inv_1:pay_1"),
    ("late_approval_key", lambda: ids.late_approval_key("pay_1"), "late:pay_1"),
    ("excess_key", lambda: ids.excess_key("pay_1"), "excess:pay_1"),
    ("void_attempt_key", lambda: ids.void_attempt_key("cancel:inv_1:pay_1"), "void:cancel:inv_1:pay_1"),
    ("refund_attempt_key", lambda: ids.refund_attempt_key("cancel:inv_1:pay_1"), "refund:cancel:inv_1:pay_1"),
    ("card_deposit_key", lambda: ids.card_deposit_key("cli_1", "req_1"), "deposit:cli_1:req_1"),
    ("terminal_attempt_key", lambda: ids.terminal_attempt_key("req_1"), "terminal:req_1"),
    ("enrollment_key", lambda: ids.enrollment_key("cli_1", "pet_1", "plan_1", DAY), "enroll:cli_1:pet_1:plan_1:2027-01-31"),
    # row ids and numbers
    ("external_id", lambda: ids.external_id("charge:sub_1:2027-01-31:1"), EXT),
    ("subscription_id_for", lambda: ids.subscription_id_for("enroll:cli_1:pet_1:plan_1:2027-01-31"), "sub_8d8ab04039915d5499f8"),
    ("invoice_id_for", lambda: ids.invoice_id_for("settlement:sub_1"), "inv_fc651758a21c5561b37a231e"),
    ("invoice_id_for_cycle", lambda: ids.invoice_id_for_cycle("sub_1", DAY), "inv_1ea545ec4ff9563fb4ac8ac3"),
    ("cycle_invoice_number", lambda: ids.cycle_invoice_number("sub_1", 0), "S-sub_1-001"),
    ("one_off_invoice_number", lambda: ids.one_off_invoice_number("settlement", "inv_fc651758a21c5561b37a231e"), "S-fc651758a21c"),
    ("payment_id_for", lambda: ids.payment_id_for(EXT), "pay_4566c59ac2395dcdab167703"),
    ("attempt_payment_id", lambda: ids.attempt_payment_id("terminal:req_1"), "pay_a70e5c964b965a13bd7b5d5b"),
    ("refund_id_for", lambda: ids.refund_id_for(EXT), "ref_4566c59ac2395dcdab167703"),
    ("deposit_id_for_payment", lambda: ids.deposit_id_for_payment(EXT), "dep_4566c59ac2395dcdab167703"),
    ("overpayment_deposit_id", lambda: ids.overpayment_deposit_id(EXT), "dep_over_4566c59ac2395dcdab16"),
    ("settlement_credit_deposit_id", lambda: ids.settlement_credit_deposit_id("sub_1"), "dep_da605317a9c45c548288c68c"),
    ("proration_credit_deposit_id", lambda: ids.proration_credit_deposit_id("sub_1", AT), "dep_b0124feb878f5676b4b031e8"),
    ("saved_card_id_for", lambda: ids.saved_card_id_for(EXT), "card_4566c59ac2395dcdab167703"),
    ("sale_fingerprint", lambda: ids.sale_fingerprint("ut_1"), "trans:ut_1"),
    ("deposit_reference", lambda: ids.deposit_reference("pay_1"), "deposit:pay_1"),
    ("refund_request_id", lambda: ids.refund_request_id("customer:pay_1:req_1"), "rfq_18b2e29a61725591a66c7f67"),
    # workflow ids
    ("subscription_workflow_id", lambda: ids.subscription_workflow_id("sub_1"), "subscription:sub_1"),
    ("terminal_workflow_id", lambda: ids.terminal_workflow_id("pay_1"), "terminal-payment:pay_1"),
    ("cancellation_workflow_id", lambda: ids.cancellation_workflow_id("inv_1"), "invoice-cancellation:inv_1"),
    ("refund_workflow_id", lambda: ids.refund_workflow_id("rfq_1"), "refund:rfq_1"),
    ("card_deposit_workflow_id", lambda: ids.card_deposit_workflow_id("pay_1"), "card-deposit:pay_1"),
    ("charging_enabled_workflow_id", lambda: ids.charging_enabled_workflow_id("loc_1", "abc"), "charging-enabled:loc_1:abc"),
    # ledger references
    ("invoice_issued_reference", lambda: ids.invoice_issued_reference("inv_1"), "invoice:inv_1:issued"),
    ("invoice_void_reference", lambda: ids.invoice_void_reference("inv_1"), "invoice:inv_1:void"),
    ("invoice_refunds_reclassified_reference", lambda: ids.invoice_refunds_reclassified_reference("inv_1"), "invoice:inv_1:refunds_reclassified"),
    ("credit_applied_reference", lambda: ids.credit_applied_reference(7), "credit_application:7"),
    ("credit_returned_reference", lambda: ids.credit_returned_reference(7), "credit_application:7:returned"),
    ("payment_approved_reference", lambda: ids.payment_approved_reference(EXT), f"payment:{EXT}:approved"),
    ("refund_done_reference", lambda: ids.refund_done_reference(EXT), f"refund:{EXT}:done"),
    ("refund_unapplied_reference", lambda: ids.refund_unapplied_reference(EXT), f"refund:{EXT}:unapplied"),
    ("settlement_credit_reference", lambda: ids.settlement_credit_reference("dep_1"), "settlement_credit:dep_1"),
    ("proration_credit_reference", lambda: ids.proration_credit_reference("dep_1"), "proration_credit:dep_1"),
    ("unearned_given_back_reference", lambda: ids.unearned_given_back_reference("refund:rfd_1"), "unearned_given_back:refund:rfd_1"),
    (
        "unearned_restored_reference",
        lambda: ids.unearned_restored_reference("unearned_given_back:refund:rfd_1"),
        "restored:unearned_given_back:refund:rfd_1",
    ),
    ("revenue_recognized_reference", lambda: ids.revenue_recognized_reference("inv_1", 12), "revenue_recognized:inv_1:12"),
    # outbox streams, event ids and dedupe keys
    ("RECONCILIATION_STREAM", lambda: ids.RECONCILIATION_STREAM, "finance:reconciliation"),
    ("subscription_stream", lambda: ids.subscription_stream("sub_1"), "subscription:sub_1"),
    ("plan_stream", lambda: ids.plan_stream("plan_1"), "plan:plan_1"),
    ("client_stream", lambda: ids.client_stream("cli_1"), "client:cli_1"),
    ("event_stream of a subscription", lambda: ids.event_stream("sub_1", "cli_1"), "subscription:sub_1"),
    ("event_stream of a client", lambda: ids.event_stream(None, "cli_1"), "client:cli_1"),
    ("event_id_for", lambda: ids.event_id_for("payment.succeeded:pay_1"), "07975b7c-3d06-5a35-92cc-4adc4601f4fa"),
    ("subscription_event_key", lambda: ids.subscription_event_key("payment.retry_scheduled", "sub_1", 3, "2"), "payment.retry_scheduled:sub_1:3:2"),
    ("invoice_issued_event_key", lambda: ids.invoice_issued_event_key("inv_1"), "invoice.issued:inv_1"),
    ("invoice_voided_event_key", lambda: ids.invoice_voided_event_key("inv_1"), "invoice.voided:inv_1"),
    ("payment_succeeded_event_key", lambda: ids.payment_succeeded_event_key("pay_1"), "payment.succeeded:pay_1"),
    ("payment_failed_event_key", lambda: ids.payment_failed_event_key("pay_1"), "payment.failed:pay_1"),
    ("payment_overpaid_event_key", lambda: ids.payment_overpaid_event_key("pay_1"), "payment.overpaid:pay_1"),
    ("payment_late_reversed_event_key", lambda: ids.payment_late_reversed_event_key("pay_1"), "payment.late_reversed:pay_1"),
    ("payment_manual_review_event_key", lambda: ids.payment_manual_review_event_key("pay_1"), "payment.manual_review:pay_1"),
    ("payment_closed_unsent_event_key", lambda: ids.payment_closed_unsent_event_key("pay_1"), "payment.closed_unsent:pay_1"),
    ("payment_excess_returned_event_key", lambda: ids.payment_excess_returned_event_key("pay_1"), "payment.excess_returned:pay_1"),
    ("payment_decline_unclassified_event_key", lambda: ids.payment_decline_unclassified_event_key("pay_1"), "payment.decline_unclassified:pay_1"),
    ("deposit_received_event_key", lambda: ids.deposit_received_event_key("dep_1"), "deposit.received:dep_1"),
    ("refund_done_event_key", lambda: ids.refund_done_event_key("ref_1"), "refund.done:ref_1"),
    ("card_saved_event_key", lambda: ids.card_saved_event_key("pay_1"), "card.saved:pay_1"),
    ("card_disabled_event_key", lambda: ids.card_disabled_event_key("card_1", "pay_1"), "card.disabled:card_1:pay_1"),
    ("card_expiring_event_key", lambda: ids.card_expiring_event_key("sub_1", "card_1", 4), "card.expiring:sub_1:card_1:4"),
    ("card_changed_event_key", lambda: ids.card_changed_event_key("sub_1", "card_1", "run_1"), "card_changed:sub_1:card_1:run_1"),
    ("plan_changed_event_key", lambda: ids.plan_changed_event_key("sub_1", "plan_2", AT), "plan_changed:sub_1:plan_2:2027-03-15T14:30:00+00:00"),
    ("settlement_failed_event_key", lambda: ids.settlement_failed_event_key("sub_1"), "subscription.settlement_failed:sub_1"),
    ("subscription_cancelled_event_key", lambda: ids.subscription_cancelled_event_key("sub_1"), "subscription.cancelled:sub_1"),
    ("service_redeemed_event_key", lambda: ids.service_redeemed_event_key("red_1"), "service.redeemed:red_1"),
    (
        "reconciliation_difference_event_key",
        lambda: ids.reconciliation_difference_event_key(DAY, 0, "sale x: ours 1 cents, gateway 0 cents"),
        "reconciliation.difference:2027-01-31:0:sale x: ours 1 cents, gateway 0 cents",
    ),
    ("reconciliation_completed_event_key", lambda: ids.reconciliation_completed_event_key(DAY, 12, 1), "reconciliation.completed:2027-01-31:12:1"),
]


@pytest.mark.parametrize(("name", "make", "expected"), PINNED, ids=[name for name, _, _ in PINNED])
def test_format_is_pinned(name: str, make: Callable[[], str], expected: str) -> None:
    assert make() == expected


def test_every_public_name_is_pinned() -> None:
    """A key added to `foundation.ids` is pinned here the day it lands (only `new_id` is random)."""
    public = {name for name in vars(ids) if not name.startswith("_") and (callable(getattr(ids, name)) or name.isupper())}
    public -= {"annotations", "date", "datetime", "uuid", "new_id"}
    pinned = {name.split(" ")[0] for name, _, _ in PINNED}
    assert public - pinned == set()


def test_new_id_is_random_with_its_prefix() -> None:
    first, second = ids.new_id("cli"), ids.new_id("cli")
    assert first != second and first.startswith("cli_") and len(first) == len("cli_") + 24


@pytest.mark.parametrize(("make", "attempt"), [(lambda a: ids.charge_key("sub_1", DAY, a), 0), (lambda a: ids.invoice_retry_key("inv_1", a), 1)])
def test_attempt_numbers_are_checked(make: Callable[[int], str], attempt: int) -> None:
    with pytest.raises(ValueError):
        make(attempt)
