"""The invoice-cancellation saga: give back every payment on an invoice, then void it.

Why a saga workflow: cancelling means several Gravity calls (one void or refund per payment) that
must all happen exactly once even if the worker dies or the gateway fails half-way. Each payment is
one activity whose keys derive from (invoice, payment), so a retried or re-run step finds its own
earlier rows and looks them up at Gravity instead of giving money back twice. Transient faults are
retried by Temporal for as long as it takes. Applied client credit goes back to its deposit. The
plan is re-read until nothing is left (a payment that landed meanwhile is compensated too), then the
invoice is voided and its subscription, if any, is told.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.invoice_compensation import InvoiceCompensationActivities
    from foundation.contracts import (
        CompensationPlan,
        CompensationStep,
        GiveBackOutcome,
        InvoiceCancellationInput,
        InvoiceCancellationOutcome,
        InvoiceChanged,
        InvoiceStatus,
    )
    from foundation.ids import cancellation_workflow_id, subscription_workflow_id  # noqa: F401 - the id is re-exported for callers
    from workflows.retries import DB_RETRY, MONEY_RETRY, VOID_RETRY

MAX_ROUNDS = 5  # runs from before PATCH_WAIT_BETWEEN_ROUNDS gave up after this many rounds
# A refund already in flight on the invoice (a customer refund still retrying) blocks the void until it
# ends: the saga waits for it with a growing pause instead of giving up while the invoice is still open.
PATCH_WAIT_BETWEEN_ROUNDS = "cancellation-waits-between-rounds"
FIRST_WAIT = timedelta(seconds=2)
LONGEST_WAIT = timedelta(minutes=10)
GIVE_UP_AFTER = timedelta(days=1)


def wait_before_round(round_number: int) -> timedelta:
    """The pause before planning again after `round_number` rounds (1 and up): doubling, capped."""
    return min(FIRST_WAIT * (2.0 ** (round_number - 1)), LONGEST_WAIT)


@workflow.defn(name="InvoiceCancellation")
class InvoiceCancellationWorkflow:
    def __init__(self) -> None:
        self._state = "planning"
        self._compensated: list[GiveBackOutcome] = []

    @workflow.run
    async def run(self, input: InvoiceCancellationInput) -> InvoiceCancellationOutcome:
        credit_returned = 0
        subscription_id: str | None = None
        started = workflow.now()
        rounds = 0
        while True:
            rounds += 1
            plan: CompensationPlan = await workflow.execute_activity_method(
                InvoiceCompensationActivities.plan_invoice_compensation,
                input.invoice_id,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=DB_RETRY,
            )
            subscription_id = plan.subscription_id
            if plan.invoice_status == InvoiceStatus.VOID:
                break
            self._state = "compensating"
            for payment_id in plan.payment_ids:
                given: GiveBackOutcome = await workflow.execute_activity_method(
                    InvoiceCompensationActivities.compensate_payment,
                    CompensationStep(input.invoice_id, payment_id=payment_id, reason=input.reason, at=workflow.now()),
                    # A lookup, a void, maybe a refund and their follow-up lookups: minutes, not 15 s;
                    # the heartbeat notices a dead worker within seconds whatever the phase.
                    start_to_close_timeout=timedelta(minutes=5),
                    heartbeat_timeout=timedelta(seconds=10),
                    retry_policy=MONEY_RETRY,
                )
                self._compensated.append(given)
            for application_id in plan.credit_application_ids:
                credit_returned += await workflow.execute_activity_method(
                    InvoiceCompensationActivities.return_invoice_credit,
                    CompensationStep(input.invoice_id, credit_application_id=application_id, at=workflow.now()),
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=DB_RETRY,
                )
            self._state = "voiding"
            try:
                await workflow.execute_activity_method(
                    InvoiceCompensationActivities.void_cancelled_invoice,
                    CompensationStep(input.invoice_id, reason=input.reason or "cancelled", at=workflow.now()),
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=VOID_RETRY,
                )
                break
            except ActivityError:
                pass  # a refund still in flight, or something new was paid meanwhile: plan again
            if not workflow.patched(PATCH_WAIT_BETWEEN_ROUNDS):
                if rounds >= MAX_ROUNDS:
                    raise ApplicationError(f"invoice {input.invoice_id} could not be fully compensated in {MAX_ROUNDS} rounds", non_retryable=True)
                continue
            if workflow.now() - started >= GIVE_UP_AFTER:
                raise ApplicationError(
                    f"invoice {input.invoice_id} could not be fully compensated in {GIVE_UP_AFTER}: a refund on it is still not final",
                    non_retryable=True,
                )
            self._state = "waiting_for_refunds"
            await workflow.sleep(wait_before_round(rounds))
        self._state = "void"
        if subscription_id:
            try:
                await workflow.get_external_workflow_handle(subscription_workflow_id(subscription_id)).signal(
                    "invoice_changed", InvoiceChanged(input.invoice_id, InvoiceStatus.VOID, 0)
                )
            except Exception as error:  # noqa: BLE001 - a finished subscription has nothing to learn
                workflow.logger.info("subscription %s not signalled: %s", subscription_id, error)
        return InvoiceCancellationOutcome(input.invoice_id, InvoiceStatus.VOID, list(self._compensated), credit_returned, subscription_id)

    @workflow.query
    def progress(self) -> str:
        return self._state
