"""One durable workflow per counter-terminal payment (or deposit taken at the terminal).

Why a workflow: between "show the amount on the device" and "the customer tapped" anything can
happen (postback lost, duplicated or late; worker restarts; the customer walks away). The workflow
follows Gravity's advice and never loses or doubles the money:

1. validate and write the payment row (activity), then push the sale to the device;
2. wait for the result: a verified postback arrives as the `postback` signal; meanwhile poll the
   lookup every `poll_every_s` (the fallback when the postback is lost);
3. after `counter_timeout_s` without a result, cancel on the device and tell the caller
   (state `timed_out_at_counter`), then keep checking every `background_every_s` for
   `background_for_s`: an approval that arrives now is booked and VOIDED (the client was told it
   failed); nothing at all by then goes to manual review;
4. staff may cancel while the customer has not finished (the `cancel` Update).
"""

from __future__ import annotations

import contextlib
import dataclasses
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.terminal import TerminalActivities
    from foundation.contracts import (
        CommandResult,
        GatewayResult,
        InvoiceChanged,
        TerminalClose,
        TerminalOutcome,
        TerminalPaymentInput,
        TerminalPrepared,
        TerminalRecord,
        TerminalView,
    )
    from foundation.ids import subscription_workflow_id, terminal_workflow_id  # noqa: F401 - the id is re-exported for callers
    from foundation.statuses import InvoiceStatus, PaymentResult
    from stack.search_attributes import PAYMENT_STATUS
    from workflows.retries import BEST_EFFORT, COMMAND_RETRY, DB_RETRY, MONEY_RETRY

WAITING = "waiting_at_counter"
TIMED_OUT = "timed_out_at_counter"


@workflow.defn(name="TerminalPayment")
class TerminalPaymentWorkflow:
    @workflow.init
    def __init__(self, input: TerminalPaymentInput) -> None:
        self._input = input
        self._state = "validating"
        self._message = ""
        self._result: GatewayResult | None = None
        self._staff_cancelled = False
        self._poll_now = False
        self._outcome: TerminalOutcome | None = None
        self._external_id = ""

    @workflow.run
    async def run(self, input: TerminalPaymentInput) -> TerminalOutcome:
        prepared: TerminalPrepared = await workflow.execute_activity_method(
            TerminalActivities.prepare_terminal_payment,
            self._dated_input(),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=DB_RETRY,
        )
        if prepared.refused_reason is not None:
            return self._finish(TerminalOutcome(input.payment_id, PaymentResult.REFUSED, message=prepared.refused_reason))
        self._external_id = prepared.external_transaction_id
        self._set_state("sending")
        try:
            await workflow.execute_activity_method(
                TerminalActivities.send_to_terminal,
                self._dated_input(),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=COMMAND_RETRY,
            )
        except ActivityError as error:
            return self._finish(await self._close(PaymentResult.REFUSED, _cause(error)))
        self._set_state(WAITING)
        timing = input.timing
        result = await self._wait_for_result(workflow.now() + timedelta(seconds=timing.counter_timeout_s), timing.poll_every_s)
        if self._staff_cancelled and result is None:
            return self._finish(await self._close(PaymentResult.CANCELLED, "cancelled by staff before the customer finished"))
        if result is None and not await self._cancel_on_device():
            # The customer finished just as we gave up: that result is on time, book it.
            result = await self._look_up() or await self._wait_for_result(workflow.now() + timedelta(seconds=timing.poll_every_s * 3), timing.poll_every_s)
        if result is not None:
            return self._finish(await self._record(result, late=False))
        self._set_state(TIMED_OUT, "no answer from the terminal; cancelled at the device, still checking in the background")
        result = await self._wait_for_result(workflow.now() + timedelta(seconds=timing.background_for_s), timing.background_every_s)
        if result is None:
            return self._finish(await self._close(PaymentResult.MANUAL_REVIEW, "no result from Gravity 30 minutes after the counter gave up"))
        return self._finish(await self._record(result, late=True))

    # ----------------------------------------------------------------- waiting
    async def _wait_for_result(self, until: datetime, every_s: int) -> GatewayResult | None:
        """Wait for a postback, polling every `every_s` seconds, until `until` or a staff cancel."""
        while True:
            if self._result is not None:
                return self._result
            if self._staff_cancelled:
                return None
            remaining = until - workflow.now()
            if remaining <= timedelta(0):
                return None
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._result is not None or self._staff_cancelled or self._poll_now,
                    timeout=min(timedelta(seconds=every_s), remaining),
                )
            if self._result is not None or self._staff_cancelled:
                continue
            self._poll_now = False
            found = await self._look_up()
            if found is not None and self._result is None:
                self._result = found

    async def _look_up(self) -> GatewayResult | None:
        try:
            return await workflow.execute_activity_method(
                TerminalActivities.look_up_terminal,
                self._dated_input(),
                start_to_close_timeout=timedelta(seconds=20),
                retry_policy=BEST_EFFORT,
            )
        except ActivityError:
            return None

    async def _cancel_on_device(self) -> bool:
        """True unless Gravity says the customer already completed the transaction."""
        try:
            return bool(
                await workflow.execute_activity_method(
                    TerminalActivities.cancel_on_terminal,
                    self._dated_input(),
                    start_to_close_timeout=timedelta(seconds=20),
                    retry_policy=BEST_EFFORT,
                )
            )
        except ActivityError:
            return True  # could not reach the device: keep checking in the background

    # ----------------------------------------------------------------- booking
    async def _record(self, result: GatewayResult, *, late: bool) -> TerminalOutcome:
        self._set_state("recording")
        outcome: TerminalOutcome = await workflow.execute_activity_method(
            TerminalActivities.record_terminal_result,
            TerminalRecord(self._input.payment_id, result, self._input.save_card, self._input.make_default, late, at=workflow.now()),
            start_to_close_timeout=timedelta(seconds=90),
            retry_policy=MONEY_RETRY,
        )
        if outcome.subscription_id and outcome.invoice_id and outcome.approved_cents > 0:
            await self._tell_subscription(outcome)
        return outcome

    async def _close(self, status: PaymentResult, message: str) -> TerminalOutcome:
        return await workflow.execute_activity_method(
            TerminalActivities.close_terminal_payment,
            TerminalClose(self._input.payment_id, status, message, at=workflow.now()),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=DB_RETRY,
        )

    async def _tell_subscription(self, outcome: TerminalOutcome) -> None:
        """An overdue subscription invoice paid at the counter lets the subscription reactivate."""
        assert outcome.subscription_id is not None and outcome.invoice_id is not None
        change = InvoiceChanged(outcome.invoice_id, outcome.invoice_status or InvoiceStatus.OPEN, outcome.balance_cents)
        try:
            await workflow.get_external_workflow_handle(subscription_workflow_id(outcome.subscription_id)).signal("invoice_changed", change)
        except Exception as error:  # noqa: BLE001 - a finished subscription has nothing to learn
            workflow.logger.info("subscription %s not signalled: %s", outcome.subscription_id, error)

    def _dated_input(self) -> TerminalPaymentInput:
        """The input with the workflow's time, which dates what the activity writes (and tells a sandbox)."""
        return dataclasses.replace(self._input, at=workflow.now())

    def _finish(self, outcome: TerminalOutcome) -> TerminalOutcome:
        self._outcome = outcome
        self._set_state(outcome.status, outcome.message)
        return outcome

    def _set_state(self, state: str, message: str = "") -> None:
        self._state = state
        self._message = message
        workflow.upsert_search_attributes([PAYMENT_STATUS.value_set(state)])

    # ----------------------------------------------------------------- signals, updates, queries
    @workflow.signal
    def postback(self, result: GatewayResult) -> None:
        """A verified postback. Duplicates and strays (another transaction's id) are ignored."""
        listening = self._result is None and self._state in (WAITING, TIMED_OUT, "sending")
        if listening and result.external_transaction_id and result.external_transaction_id == self._external_id:
            self._result = result

    @workflow.update
    async def cancel(self) -> CommandResult:
        """Staff cancel while the customer has not finished."""
        cancelled = await workflow.execute_activity_method(
            TerminalActivities.cancel_on_terminal,
            self._dated_input(),
            start_to_close_timeout=timedelta(seconds=20),
            retry_policy=BEST_EFFORT,
        )
        if cancelled and self._result is None:
            self._staff_cancelled = True
            return CommandResult(True, PaymentResult.CANCELLED, "the sale was cancelled on the device")
        self._poll_now = True
        return CommandResult(False, self._state, "the customer already completed the payment; its result will be recorded")

    @cancel.validator
    def _validate_cancel(self) -> None:
        if self._state != WAITING or self._result is not None:
            raise ValueError(f"nothing to cancel: the payment is {self._state}")

    @workflow.query
    def status(self) -> TerminalView:
        return TerminalView(self._input.payment_id, self._state, self._message, self._outcome)


def _cause(error: BaseException) -> str:
    while error.__cause__ is not None:
        error = error.__cause__
    return str(error)
