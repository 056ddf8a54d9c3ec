"""One durable workflow per health-plan subscription.

The workflow decides; activities do the database and Gravity work. It is one loop:

1. do whatever is due now (bill the next cycle, retry an overdue invoice, end or renew the term);
2. otherwise sleep until the next thing is due, or until a command wakes it.

Decisions live in pure modules (`calendar`, `dunning`, `spread`); money never lives here beyond the
balances the activities report back. At a cycle boundary, once a run has billed about a year of
cycles (`MONTHS_PER_RUN`; sooner when the server suggests it), the run continues as new, so one
subscription's history stays small whatever its age while most cycles cost no new run.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributePair
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.subscription_commands import SubscriptionCommandActivities
    from activities.subscriptions import SubscriptionActivities
    from foundation.contracts import (
        CancelInput,
        CancelOutcome,
        CancelRequest,
        CardChange,
        ChargeOutcome,
        ChargeRequest,
        ChargeResult,
        CommandResult,
        CycleOutcome,
        CycleRecord,
        InvoiceChanged,
        InvoiceStatus,
        NotCharged,
        OpenInvoice,
        PlanChange,
        PlanChangeInput,
        PlanChangeOutcome,
        PlanTerms,
        RenewalAsk,
        RenewalTerms,
        StatusChange,
        SubscriptionInput,
        SubscriptionSetup,
        SubscriptionState,
        SubscriptionStatus,
        SubscriptionView,
        WaitingFor,
    )
    from foundation.ids import invoice_id_for_cycle, subscription_event_key
    from foundation.statuses import FINAL_SUBSCRIPTION_STATUSES
    from stack.search_attributes import NEXT_DUE_AT, PLAN_ID, SUBSCRIPTION_STATUS
    from workflows import calendar, dunning
    from workflows.retries import (
        CHARGE_RETRY,
        COMMAND_DEADLINE,
        COMMAND_RETRY,
        COMMAND_TRY_TIMEOUT,
        LOCAL_CHARGE_TRY,
        STATUS_RETRY,
    )
    from workflows.spread import spread_instant, spread_retry_instant

HISTORY_KEPT = 24
# A run spans about a year of cycles (12 monthly, 1 yearly): about 150 events at most, cheap to replay
# after a cache eviction, while a new run is paid once a year, not monthly; and a run started on old
# code is gone within a year, so a patch can be deprecated after that (deploy/README.md).
MONTHS_PER_RUN = 12
# Runs recorded before this patch continued as new after every cycle; they must replay the same way.
PATCH_LONGER_RUNS = "continue-as-new-yearly"
# Runs recorded before this patch charged through an activity task; a run that has it tries a charge
# as a local activity first (see `_charge`) and spans a year, so it never needs PATCH_LONGER_RUNS's
# marker too.
PATCH_LOCAL_CHARGE = "charge-as-local-activity"
# Runs recorded before this patch kept the enrollment plan's PlanId through a plan change; a run that
# has it updates the attribute with the plan, so finance's listing by plan follows the change.
PATCH_PLAN_ATTRIBUTE = "plan-id-follows-plan-change"
# Runs recorded before this patch tracked a cycle whose first charge was refused under the invoice id
# "", which no payment could match: once paid, the entry was retried at once, forever. A run that has
# it tracks every open invoice under its real id (`_named`); the marker is recorded only by a run that
# meets such an entry.
PATCH_NAMED_INVOICES = "open-invoices-tracked-by-real-id"
# Runs recorded before this patch ran a command that had waited for its turn (behind a cancel, say)
# without asking again whether the subscription still allowed it; a run that has it refuses such a
# command (`_refused_in_turn`). The marker is recorded only by a run that refuses one.
PATCH_COMMANDS_RECHECKED = "commands-rechecked-in-turn"
# Runs recorded before this patch scheduled a retry without telling dunning the time: after a late
# card update, every retry already past fired back to back. A run that has it passes
# `workflow.now()`, so a retry never lands in the past; the marker is recorded at a retry decision.
PATCH_RETRY_AFTER_NOW = "dunning-retry-after-now"
# Runs recorded before this patch retried at the dunning instant itself (a cohort's retries all at
# 09:00:00); a run that has it spreads each retry over the herd window (`spread_retry_instant`).
PATCH_SPREAD_RETRIES = "dunning-retries-spread"
# Runs recorded before this patch lost a reactivation check pending at continue-as-new (the last open
# invoice paid elsewhere while the run closed): the next run stayed past due with nothing owed. A run
# that has it checks at its start (`_recheck_reactivation`); the marker is recorded only by a run
# that starts past due or suspended with nothing open.
PATCH_REACTIVATION_EACH_RUN = "reactivation-checked-each-run"
# Runs recorded before this patch keyed a command's event by the cycle: a pause, a resume and a pause
# in one cycle announced the first pause only. A run that has it keys it by the Update's id too
# (`_command_key`); the marker is recorded at the first such command.
PATCH_COMMAND_EVENT_KEYS = "command-events-keyed-by-update"
# Runs recorded before this patch kept a cancel at term end in the workflow alone; a run that has it
# writes it to the subscription row with a `subscription.cancel_scheduled` event, in its turn.
PATCH_TERM_END_MIRRORED = "cancel-at-term-end-mirrored"
# Runs recorded before this patch forgot a proration invoice whose charge was declined: it stayed open,
# never retried. A run that has it tracks the invoice among its open invoices (`_track_proration`),
# so dunning, a card change and pay-now apply to it; the marker is recorded at such a decline.
PATCH_PRORATIONS_DUNNED = "proration-invoices-dunned"
# Runs recorded before this patch billed on, past due, every cycle while no usable card was on file
# (hard-declined or missing). A run that has it suspends the subscription once the plan's
# `card_wait_cycles` cycles wait for a new card (`_suspend_without_card`); a card change reactivates
# it. The marker is recorded only by a run that reaches that count.
PATCH_SUSPEND_WITHOUT_CARD = "suspend-without-card"
# Runs recorded before this patch marked invoices for an immediate retry (pay-now) without waiting
# for the loop's turn, so a charge running at that moment wrote its outcome over the request.
PATCH_PAY_NOW_IN_TURN = "pay-now-in-turn"
# Runs recorded before this patch retried a proration whose first try sent nothing (its invoice held
# by another collector, or being cancelled) as attempt 1, which has no retry key: the charge failed on
# every try. A run that has it retries a one-off invoice from attempt 2.
PATCH_ONE_OFF_RETRIES_FROM_TWO = "one-off-retries-from-two"
# Runs recorded before this patch renewed a term on the terms they already carried, whatever had
# become of the plan. A run that has it asks at renewal (`_renew_on_current_version`): the next term
# bills the plan's newest version, and a retired plan's subscription ends instead of renewing. The
# marker is recorded at the first renewal.
PATCH_PLAN_VERSIONS = "plan-versions-at-renewal"
# A local try of a charge: a Gravity call answers within 15 s, and a try makes at most a lookup and a
# sale. A try cut short is handed to the activity task, which looks the attempt up first.
LOCAL_CHARGE_TIMEOUT = timedelta(seconds=30)
# How long a cycle's retry waits while another collector (the counter terminal) holds the invoice.
COLLECTION_IN_PROGRESS_WAIT = timedelta(minutes=10)
# How long a retry waits when the card networks' reattempt limits forbid it now.
NETWORK_LIMIT_WAIT = timedelta(hours=24)
UNTRIED = (NotCharged.IN_PROGRESS, NotCharged.SUPERSEDED, NotCharged.NETWORK_LIMIT)
NO_NEW_CYCLES = (SubscriptionStatus.SUSPENDED, SubscriptionStatus.PAUSED)


@workflow.defn(name="Subscription")
class SubscriptionWorkflow:
    @workflow.init
    def __init__(self, input: SubscriptionInput) -> None:
        self._setup: SubscriptionSetup = input.setup
        self._state: SubscriptionState = input.state
        self._wake = False
        self._cycles_this_run = 0
        self._check_reactivation = False
        # The loop and the commands that run activities take turns: a cancel never overlaps a charge.
        self._turn = asyncio.Lock()

    # ----------------------------------------------------------------- the loop
    @workflow.run
    async def run(self, input: SubscriptionInput) -> str:
        self._publish_search_attributes()
        self._recheck_reactivation()
        while self._state.status not in FINAL_SUBSCRIPTION_STATUSES:
            # Cleared before the work, not before the sleep: a command that arrives while the loop
            # works (a cancel waiting for its turn) must still cut the next sleep short.
            self._wake = False
            if await self._do_due_work():
                if self._should_continue_as_new():
                    await workflow.wait_condition(workflow.all_handlers_finished)
                    workflow.continue_as_new(SubscriptionInput(self._setup, self._state))
                continue
            if self._state.status in FINAL_SUBSCRIPTION_STATUSES:
                break
            await self._sleep_until(self._next_wake())
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._state.status

    async def _do_due_work(self) -> bool:
        """Run everything due at `workflow.now()`; True if anything ran."""
        async with self._turn:
            return await self._do_due_work_now()

    async def _do_due_work_now(self) -> bool:
        now = workflow.now()
        if self._state.status in FINAL_SUBSCRIPTION_STATUSES:
            return False
        self._name_open_invoices()
        if self._check_reactivation:
            self._check_reactivation = False
            await self._reactivate_if_clear()
        for invoice in list(self._state.open_invoices):
            if invoice.waiting_for == WaitingFor.RETRY and invoice.next_attempt_at is not None and invoice.next_attempt_at <= now:
                await self._attempt(invoice, invoice.attempts + 1)
                return True
        if self._next_cycle_moment() > now:
            return False
        if self._at_term_end():
            await self._end_or_renew_term()
            return True
        if self._state.status in NO_NEW_CYCLES:
            self._state.next_cycle += 1
            self._state.skipped_cycles += 1
            self._cycles_this_run += 1  # a skipped cycle is a boundary too: history stays bounded
            self._publish_search_attributes()
            return True
        await self._bill_next_cycle()
        return True

    def _recheck_reactivation(self) -> None:
        """Ask for the reactivation check a previous run may have owed: the flag is not carried over
        continue-as-new, but the state it judges is."""
        owes = self._state.status in (SubscriptionStatus.PAST_DUE, SubscriptionStatus.SUSPENDED) and not self._state.open_invoices
        if owes and workflow.patched(PATCH_REACTIVATION_EACH_RUN):
            self._check_reactivation = True

    def _should_continue_as_new(self) -> bool:
        if workflow.info().is_continue_as_new_suggested():
            return True
        yearly = workflow.patched(PATCH_LOCAL_CHARGE) or workflow.patched(PATCH_LONGER_RUNS)
        per_run = max(1, MONTHS_PER_RUN // self._plan.interval_months) if yearly else 1
        return self._cycles_this_run >= per_run

    async def _sleep_until(self, moment: datetime | None) -> None:
        if moment is None:
            await workflow.wait_condition(lambda: self._wake)
            return
        delay = moment - workflow.now()
        if delay <= timedelta(0):
            return
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(lambda: self._wake, timeout=delay)

    def _next_wake(self) -> datetime | None:
        moments = [i.next_attempt_at for i in self._state.open_invoices if i.waiting_for == WaitingFor.RETRY and i.next_attempt_at]
        moments.append(self._next_cycle_moment())
        return min(moments)

    # ----------------------------------------------------------------- cycles
    def _due_at(self, cycle: int) -> datetime:
        """The calendar's due instant of `cycle` (before spreading)."""
        return due_instant_of(self._setup, self._plan, cycle)

    def _next_cycle_moment(self) -> datetime:
        """When the next cycle is charged: its due instant spread over the herd window."""
        return spread_instant(self._due_at(self._state.next_cycle), self._setup.subscription_id)

    def _at_term_end(self) -> bool:
        term = calendar.cycles_in_term(self._plan.term_months, self._plan.interval_months)
        return self._state.next_cycle > 0 and self._state.next_cycle - self._state.term_start_cycle >= term

    async def _end_or_renew_term(self) -> None:
        if self._state.cancel_at_term_end:
            await self._mirror(SubscriptionStatus.CANCELLED, "subscription.cancelled", "cancelled at term end")
        elif not self._plan.auto_renew:
            await self._mirror(SubscriptionStatus.ENDED, "subscription.ended", "term ended without renewal")
        elif workflow.patched(PATCH_PLAN_VERSIONS):
            await self._renew_on_current_version()
        else:
            self._state.term_start_cycle = self._state.next_cycle
            await self._mirror(self._state.status, "subscription.renewed", f"renewed at cycle {self._state.next_cycle}")

    async def _renew_on_current_version(self) -> None:
        """Renew on the plan's newest version (a price change reaches a subscription here, never
        mid-term), or end the subscription when its plan was retired."""
        renewal: RenewalTerms = await workflow.execute_local_activity_method(
            SubscriptionActivities.renewal_terms,
            RenewalAsk(self._setup.subscription_id, self._plan.plan_id),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=STATUS_RETRY,
        )
        if renewal.retired:
            await self._mirror(SubscriptionStatus.ENDED, "subscription.ended", f"plan {self._plan.plan_id} was retired: term ended without renewal")
            return
        self._state.plan = renewal.plan
        self._state.term_start_cycle = self._state.next_cycle
        detail = f"renewed at cycle {self._state.next_cycle} on plan version {renewal.version} ({renewal.plan.price_cents} cents)"
        await self._mirror(self._state.status, "subscription.renewed", detail)

    async def _bill_next_cycle(self) -> None:
        cycle = self._state.next_cycle
        period_start, period_end = calendar.period_for(self._setup.start_date, cycle, interval_months=self._plan.interval_months)
        invoice = OpenInvoice(
            invoice_id="",
            cycle_index=cycle,
            period_start=period_start,
            due_at=self._due_at(cycle),
            balance_cents=self._plan.price_cents,
        )
        self._state.next_cycle += 1
        self._cycles_this_run += 1
        await self._attempt(invoice, 1, period_end=period_end)
        self._publish_search_attributes()

    async def _attempt(self, invoice: OpenInvoice, attempt: int, *, period_end: date | None = None) -> None:
        """Run one collection attempt of `invoice` and act on its outcome."""
        if period_end is None:
            period_end = calendar.period_for(self._setup.start_date, invoice.cycle_index, interval_months=self._plan.interval_months)[1]
        request = ChargeRequest(
            subscription_id=self._setup.subscription_id,
            cycle_index=invoice.cycle_index,
            period_start=invoice.period_start,
            period_end=period_end,
            due_at=invoice.due_at,
            attempt=attempt,
            card_id=self._state.card_id,
            plan=self._plan,
            first_cycle=invoice.cycle_index == 0 and invoice.kind == "subscription",
            next_due_at=self._due_at(self._state.next_cycle),
            attempt_at=invoice.next_attempt_at or invoice.due_at,
            invoice_id=None if invoice.kind == "subscription" else invoice.invoice_id,
            at=workflow.now(),
        )
        try:
            outcome = await self._charge(request)
        except (ActivityError, ApplicationError) as error:
            # A permanent gateway refusal (bad request, bad credentials) or an error no retry mends
            # (`retries.NEVER_SUCCEEDS`): an incident for people.
            await self._track(replace(self._named(invoice), attempts=attempt, waiting_for=WaitingFor.PAYMENT), CycleOutcome.INCIDENT)
            await self._mirror(SubscriptionStatus.PAST_DUE, "payment.incident", _cause(error))
            return
        await self._apply(replace(invoice, invoice_id=outcome.invoice_id, balance_cents=outcome.balance_cents), attempt, outcome)

    async def _charge(self, request: ChargeRequest) -> ChargeOutcome:
        """Run the charge activity: first as a local activity in runs that have PATCH_LOCAL_CHARGE,
        and as an activity task when that try meets a transient fault (or in older runs).

        A local activity runs in the worker that holds the workflow task, so a cycle that goes
        through at once (nearly all) costs one workflow task and a marker instead of two tasks and
        an activity task (measured in `bench/`). Its one try is as safe for money as the activity:
        both run the same idempotent charge, keyed by the attempt id, which looks the attempt up at
        Gravity before it would send it again. A worker that dies mid-try is noticed by the workflow
        task timeout (10 s, as the activity's heartbeat timeout was), and the try runs again on
        replay; a lost answer or a 5xx goes to the activity task, whose retries and backoff the
        server keeps.
        """
        if workflow.patched(PATCH_LOCAL_CHARGE):
            try:
                return await workflow.execute_local_activity_method(
                    SubscriptionActivities.charge_cycle, request, start_to_close_timeout=LOCAL_CHARGE_TIMEOUT, retry_policy=LOCAL_CHARGE_TRY
                )
            except (ActivityError, ApplicationError) as error:
                # A local activity's failure arrives as the ApplicationError it raised; only a
                # timeout comes as an ActivityError.
                if _refused(error):
                    raise
        return await workflow.execute_activity_method(
            SubscriptionActivities.charge_cycle,
            request,
            start_to_close_timeout=timedelta(seconds=120),
            heartbeat_timeout=timedelta(seconds=10),
            retry_policy=CHARGE_RETRY,
        )

    async def _apply(self, invoice: OpenInvoice, attempt: int, outcome: ChargeOutcome) -> None:
        """Dunning: decide what follows an attempt's outcome.

        A retry whose moment has already passed (the worker was down, or the run woke late) is made
        at once rather than skipped: an outage must never use up the schedule without trying.
        """
        if self._state.status in FINAL_SUBSCRIPTION_STATUSES:
            return
        if outcome.outcome == ChargeResult.PAID or (outcome.outcome == ChargeResult.NOT_CHARGED and outcome.not_charged_reason == NotCharged.INVOICE_CLOSED):
            await self._track(invoice, CycleOutcome.PAID if outcome.outcome == ChargeResult.PAID else CycleOutcome.VOID, remove=True)
            await self._reactivate_if_clear()
            return
        if outcome.outcome == ChargeResult.NOT_CHARGED and outcome.not_charged_reason in UNTRIED:
            await self._retry_untried(invoice, attempt, outcome.not_charged_reason)
            return
        if outcome.outcome == ChargeResult.NOT_CHARGED:
            waiting = WaitingFor.CHARGING_ENABLED if outcome.not_charged_reason == NotCharged.CHARGING_DISABLED else WaitingFor.NEW_CARD
            await self._track(replace(invoice, waiting_for=waiting, next_attempt_at=None), CycleOutcome.NOT_CHARGED, outcome.not_charged_reason or "")
            if self._state.status == SubscriptionStatus.ACTIVE:
                await self._mirror(SubscriptionStatus.PAST_DUE, "payment.not_attempted", outcome.not_charged_reason or "")
            await self._suspend_without_card(outcome.not_charged_reason or "")
            return
        invoice = replace(
            invoice,
            attempts=attempt,
            last_decline_reason=outcome.decline_reason,
            last_decline_class=outcome.decline_class or ("soft" if outcome.outcome == ChargeResult.PARTIAL else None),
        )
        step = dunning.next_step(
            self._schedule,
            due_at=invoice.due_at,
            attempts_made=attempt,
            last_decline_class=invoice.last_decline_class,
            tz=self._setup.timezone,
            now=workflow.now() if workflow.patched(PATCH_RETRY_AFTER_NOW) else None,
        )
        if step.kind == dunning.RETRY_AT:
            retry_at = self._spread_retry(step.retry_at, attempt + 1)
            await self._track(replace(invoice, waiting_for=WaitingFor.RETRY, next_attempt_at=retry_at), CycleOutcome.DECLINED, step.reason)
            await self._mirror(
                SubscriptionStatus.PAST_DUE,
                "payment.retry_scheduled",
                f"{outcome.decline_reason}: {step.reason}",
                event_suffix=_attempt_suffix(invoice, attempt),
            )
        elif step.kind == dunning.WAIT_FOR_NEW_CARD:
            await self._track(replace(invoice, waiting_for=WaitingFor.NEW_CARD, next_attempt_at=None), CycleOutcome.DECLINED, step.reason)
            await self._mirror(
                SubscriptionStatus.PAST_DUE,
                "payment.card_needed",
                f"{outcome.decline_reason}: {step.reason}",
                event_suffix=_attempt_suffix(invoice, attempt),
            )
            await self._suspend_without_card(f"declined: {outcome.decline_reason}")
        else:
            await self._track(replace(invoice, waiting_for=WaitingFor.PAYMENT, next_attempt_at=None), CycleOutcome.DECLINED, step.reason)
            if step.on_exhausted == dunning.CANCEL:
                await self._mirror(SubscriptionStatus.CANCELLED, "subscription.cancelled", step.reason)
            else:
                await self._mirror(SubscriptionStatus.SUSPENDED, "subscription.suspended", step.reason, event_suffix=invoice.invoice_id)

    def _spread_retry(self, retry_at: datetime | None, attempt: int) -> datetime | None:
        """The moment retry `attempt` starts: spread over the herd window in runs that have
        PATCH_SPREAD_RETRIES, the dunning instant itself in older runs."""
        if retry_at is None or not workflow.patched(PATCH_SPREAD_RETRIES):
            return retry_at
        return spread_retry_instant(retry_at, self._setup.subscription_id, attempt)

    async def _suspend_without_card(self, cause: str) -> None:
        """Suspend once the plan's `card_wait_cycles` cycles wait for a new card (runs that have
        PATCH_SUSPEND_WITHOUT_CARD): billing on would only add invoices no card can pay. The clinic
        is told what to do with a `payment.card_needed` event; a card change reactivates."""
        cycles = len({i.cycle_index for i in self._state.open_invoices if i.waiting_for == WaitingFor.NEW_CARD and i.kind == "subscription"})
        if self._state.status in (SubscriptionStatus.SUSPENDED, *FINAL_SUBSCRIPTION_STATUSES) or not dunning.card_wait_over(
            cycles, self._plan.card_wait_cycles
        ):
            return
        if not workflow.patched(PATCH_SUSPEND_WITHOUT_CARD):
            return
        why = f"no usable card for {cycles} cycles (last: {cause}); no cycle is billed until a new card is saved"
        await self._mirror(SubscriptionStatus.SUSPENDED, "subscription.suspended", why, event_suffix="no_card")
        await self._mirror(
            SubscriptionStatus.SUSPENDED,
            "payment.card_needed",
            "save a new card for the client to reactivate the subscription",
            event_suffix="suspended",
        )

    async def _retry_untried(self, invoice: OpenInvoice, attempt: int, reason: NotCharged) -> None:
        """A try that sent nothing takes no dunning step. While another collector holds the invoice,
        or the card networks forbid another try, the same attempt is tried again later (the other
        collector's result usually clears it first); an attempt closed unsent is followed at once by
        the next, for what is left."""
        again = reason in (NotCharged.IN_PROGRESS, NotCharged.NETWORK_LIMIT)
        one_off = invoice.kind != "subscription" and workflow.patched(PATCH_ONE_OFF_RETRIES_FROM_TWO)
        made = dunning.attempts_before_untried_retry(attempt, same_attempt_again=again, one_off=one_off)
        wait = timedelta(0)
        if again:
            wait = COLLECTION_IN_PROGRESS_WAIT if reason == NotCharged.IN_PROGRESS else NETWORK_LIMIT_WAIT
        retry = replace(invoice, attempts=made, waiting_for=WaitingFor.RETRY, next_attempt_at=workflow.now() + wait)
        await self._track(retry, CycleOutcome.NOT_CHARGED, reason)

    async def _track(self, invoice: OpenInvoice, outcome: CycleOutcome, detail: str = "", *, remove: bool = False) -> None:
        """Keep the open-invoice list and the recent history current."""
        others = [i for i in self._state.open_invoices if i.invoice_id != invoice.invoice_id]
        self._state.open_invoices = others if remove else [*others, invoice]
        record = CycleRecord(invoice.cycle_index, invoice.period_start, invoice.invoice_id, outcome, detail)
        self._state.history = [*self._state.history, record][-HISTORY_KEPT:]

    def _named(self, invoice: OpenInvoice) -> OpenInvoice:
        """`invoice` under its real id, in runs that have PATCH_NAMED_INVOICES: a cycle's first entry is
        made before the charge answers, and one left nameless could never be matched by its payment."""
        if invoice.invoice_id or not workflow.patched(PATCH_NAMED_INVOICES):
            return invoice
        return replace(invoice, invoice_id=self._invoice_id_of(invoice))

    def _name_open_invoices(self) -> None:
        """Name the entries a run from before PATCH_NAMED_INVOICES carried over nameless."""
        if any(not invoice.invoice_id for invoice in self._state.open_invoices):
            self._state.open_invoices = [self._named(invoice) for invoice in self._state.open_invoices]

    def _invoice_id_of(self, invoice: OpenInvoice) -> str:
        """The tracked invoice's id; the cycle's invoice id is deterministic, so a nameless entry has one too."""
        return invoice.invoice_id or invoice_id_for_cycle(self._setup.subscription_id, invoice.period_start)

    async def _reactivate_if_clear(self) -> None:
        if self._state.status in (SubscriptionStatus.PAST_DUE, SubscriptionStatus.SUSPENDED) and not self._state.open_invoices:
            was = self._state.status
            event = "subscription.reactivated" if was == SubscriptionStatus.SUSPENDED else "subscription.recovered"
            await self._mirror(SubscriptionStatus.ACTIVE, event, f"was {was}")

    # ----------------------------------------------------------------- status mirroring
    async def _mirror(
        self, status: SubscriptionStatus, event_type: str, detail: str, *, event_suffix: str = "", cancel_at_term_end: bool | None = None
    ) -> None:
        """Record a status decision in the database (row + outbox event), then in search attributes."""
        self._state.status = status
        key = subscription_event_key(event_type, self._setup.subscription_id, self._state.next_cycle, event_suffix)
        await workflow.execute_local_activity_method(
            SubscriptionActivities.mirror_status,
            StatusChange(
                subscription_id=self._setup.subscription_id,
                status=status,
                event_type=event_type,
                event_key=key,
                detail=detail,
                next_due_at=None if status in FINAL_SUBSCRIPTION_STATUSES else self._due_at(self._state.next_cycle),
                cancel_at_term_end=cancel_at_term_end,
                at=workflow.now(),
            ),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=STATUS_RETRY,
        )
        self._publish_search_attributes()

    def _publish_search_attributes(self) -> None:
        """Keep finance's search attributes current, writing only what changed (each upsert is a
        history event; continue-as-new carries the current values over)."""
        current = workflow.info().typed_search_attributes
        updates = [pair.key.value_set(pair.value) for pair in live_search_attributes(self._setup, self._state) if current.get(pair.key) != pair.value]
        if updates:
            workflow.upsert_search_attributes(updates)

    # ----------------------------------------------------------------- commands (Updates)
    @workflow.update
    async def cancel(self, request: CancelRequest) -> CommandResult:
        if request.mode == "term_end":
            return await self._cancel_at_term_end(request)
        async with self._turn:
            return await self._cancel_now(request)

    async def _cancel_at_term_end(self, request: CancelRequest) -> CommandResult:
        """Schedule the cancellation; in runs that have PATCH_TERM_END_MIRRORED, in the command's turn
        and written to the subscription row, so the billing system sees it too."""
        if not workflow.patched(PATCH_TERM_END_MIRRORED):
            self._state.cancel_at_term_end = True
            return CommandResult(True, self._state.status, "will cancel at the end of the current term")
        async with self._turn:
            if refused := self._refused_in_turn(status_refusal("cancel", self._state.status)):
                return refused
            self._state.cancel_at_term_end = True
            detail = "cancels at the end of the current term" + (f": {request.reason}" if request.reason else "")
            await self._mirror(self._state.status, "subscription.cancel_scheduled", detail, event_suffix=self._command_key(), cancel_at_term_end=True)
        return CommandResult(True, self._state.status, "will cancel at the end of the current term")

    async def _cancel_now(self, request: CancelRequest) -> CommandResult:
        if self._state.status in FINAL_SUBSCRIPTION_STATUSES:
            return CommandResult(False, self._state.status, "already finished")
        current = self._current_period()
        outcome: CancelOutcome = await workflow.execute_activity_method(
            SubscriptionCommandActivities.cancel_subscription,
            CancelInput(
                subscription_id=self._setup.subscription_id,
                plan=self._plan,
                card_id=self._state.card_id,
                cancel_at=workflow.now(),
                period_start=current[0] if current else None,
                period_end=current[1] if current else None,
                open_invoice_ids=[self._invoice_id_of(i) for i in self._state.open_invoices],
                reason=request.reason,
            ),
            start_to_close_timeout=COMMAND_TRY_TIMEOUT,
            schedule_to_close_timeout=COMMAND_DEADLINE,
            retry_policy=COMMAND_RETRY,
        )
        self._state.open_invoices = []
        self._state.status = SubscriptionStatus.CANCELLED
        self._publish_search_attributes()
        self._wake = True
        message = f"cancelled; settlement: {outcome.settlement_kind} {outcome.settlement_cents} cents"
        return CommandResult(True, SubscriptionStatus.CANCELLED, message)

    @cancel.validator
    def _validate_cancel(self, request: CancelRequest) -> None:
        _refuse_if(status_refusal("cancel", self._state.status))
        if request.mode not in ("now", "term_end"):
            raise ValueError(f"mode must be 'now' or 'term_end', got {request.mode!r}")

    @workflow.update
    async def pause(self) -> CommandResult:
        async with self._turn:
            if refused := self._refused_in_turn(status_refusal("pause", self._state.status)):
                return refused
            await self._mirror(SubscriptionStatus.PAUSED, "subscription.paused", "paused by the clinic", event_suffix=self._command_key())
        self._wake = True
        return CommandResult(True, SubscriptionStatus.PAUSED, "no cycles are billed while paused")

    @pause.validator
    def _validate_pause(self) -> None:
        _refuse_if(status_refusal("pause", self._state.status))

    @workflow.update
    async def resume(self) -> CommandResult:
        async with self._turn:
            if refused := self._refused_in_turn(status_refusal("resume", self._state.status)):
                return refused
            await self._mirror(SubscriptionStatus.ACTIVE, "subscription.resumed", "resumed by the clinic", event_suffix=self._command_key())
        self._wake = True
        return CommandResult(True, SubscriptionStatus.ACTIVE, "billing resumes at the next due date")

    @resume.validator
    def _validate_resume(self) -> None:
        _refuse_if(status_refusal("resume", self._state.status))

    @workflow.update
    async def change_card(self, card_id: str) -> CommandResult:
        async with self._turn:
            if refused := self._refused_in_turn(self._change_card_refusal(card_id)):
                return refused
            await workflow.execute_activity_method(
                SubscriptionCommandActivities.change_card,
                CardChange(self._setup.subscription_id, card_id, at=workflow.now()),
                start_to_close_timeout=timedelta(seconds=30),
                schedule_to_close_timeout=COMMAND_DEADLINE,
                retry_policy=COMMAND_RETRY,
            )
        self._state.card_id = card_id
        retried = self._retry_now((WaitingFor.RETRY, WaitingFor.NEW_CARD, WaitingFor.PAYMENT))
        return CommandResult(True, self._state.status, f"card changed; {retried} open invoice(s) retried now")

    @change_card.validator
    def _validate_change_card(self, card_id: str) -> None:
        _refuse_if(self._change_card_refusal(card_id))

    def _change_card_refusal(self, card_id: str) -> str | None:
        if refusal := status_refusal("change_card", self._state.status):
            return refusal
        if not isinstance(card_id, str) or not card_id.strip():
            return "card_id must be a non-empty saved-card id"
        if card_id == self._state.card_id:
            return f"card {card_id} is already the subscription's card"
        return None

    @workflow.update
    async def change_plan(self, change: PlanChange) -> CommandResult:
        async with self._turn:
            if refused := self._refused_in_turn(self._change_plan_refusal(change)):
                return refused
            return await self._change_plan_now(change)

    async def _change_plan_now(self, change: PlanChange) -> CommandResult:
        current = self._current_period()
        outcome: PlanChangeOutcome = await workflow.execute_activity_method(
            SubscriptionCommandActivities.change_plan,
            PlanChangeInput(
                subscription_id=self._setup.subscription_id,
                old_plan=self._plan,
                new_plan_id=change.plan_id,
                change_at=workflow.now(),
                period_start=current[0] if current else None,
                period_end=current[1] if current else None,
                card_id=self._state.card_id,
            ),
            start_to_close_timeout=COMMAND_TRY_TIMEOUT,
            schedule_to_close_timeout=COMMAND_DEADLINE,
            retry_policy=COMMAND_RETRY,
        )
        self._state.plan = outcome.new_plan
        if workflow.patched(PATCH_PLAN_ATTRIBUTE):
            workflow.upsert_search_attributes([PLAN_ID.value_set(outcome.new_plan.plan_id)])
        await self._track_proration(outcome, current)
        self._wake = True
        return CommandResult(True, self._state.status, outcome.message)

    async def _track_proration(self, outcome: PlanChangeOutcome, period: tuple[date, date] | None) -> None:
        """A proration invoice its first charge left open follows dunning like a cycle's (in runs that
        have PATCH_PRORATIONS_DUNNED): the change's moment is its due instant."""
        collection = outcome.collection
        if outcome.invoice_id is None or collection is None or collection.outcome == ChargeResult.PAID or period is None:
            return
        if not workflow.patched(PATCH_PRORATIONS_DUNNED):
            return
        invoice = OpenInvoice(
            invoice_id=outcome.invoice_id,
            cycle_index=self._state.next_cycle - 1,
            period_start=period[0],
            due_at=workflow.now(),
            balance_cents=collection.balance_cents,
            kind="proration",
        )
        await self._apply(invoice, 1, collection)

    @change_plan.validator
    def _validate_change_plan(self, change: PlanChange) -> None:
        _refuse_if(self._change_plan_refusal(change))

    def _change_plan_refusal(self, change: PlanChange) -> str | None:
        if refusal := status_refusal("change_plan", self._state.status):
            return refusal
        if change.plan_id == self._plan.plan_id:
            return f"the subscription is already on plan {change.plan_id}"
        return None

    @workflow.update
    async def pay_now(self) -> CommandResult:
        waiting = (WaitingFor.RETRY, WaitingFor.NEW_CARD, WaitingFor.PAYMENT, WaitingFor.CHARGING_ENABLED)
        if workflow.patched(PATCH_PAY_NOW_IN_TURN):
            async with self._turn:
                retried = self._retry_now(waiting)
        else:
            retried = self._retry_now(waiting)
        return CommandResult(True, self._state.status, f"{retried} open invoice(s) will be charged now")

    @pay_now.validator
    def _validate_pay_now(self) -> None:
        _refuse_if(status_refusal("pay_now", self._state.status))
        if not self._state.open_invoices:
            raise ValueError("nothing to pay: the subscription has no open invoice")

    # ----------------------------------------------------------------- signals from other parts
    @workflow.signal
    def invoice_changed(self, change: InvoiceChanged) -> None:
        """An invoice of ours was paid, partly paid or voided elsewhere (counter, deposit, saga)."""
        for invoice in self._state.open_invoices:
            if invoice.invoice_id != change.invoice_id:
                continue
            if change.status != InvoiceStatus.OPEN or change.balance_cents == 0:
                self._state.open_invoices = [i for i in self._state.open_invoices if i.invoice_id != change.invoice_id]
                self._check_reactivation = True
            else:
                invoice.balance_cents = change.balance_cents
        self._wake = True

    @workflow.signal
    def charging_enabled(self) -> None:
        """The location turned "allow Gravity payment for recurring payment" back on."""
        self._retry_now((WaitingFor.CHARGING_ENABLED,))

    # ----------------------------------------------------------------- queries
    @workflow.query
    def describe(self) -> SubscriptionView:
        current = self._current_period()
        final = self._state.status in FINAL_SUBSCRIPTION_STATUSES
        return SubscriptionView(
            subscription_id=self._setup.subscription_id,
            status=self._state.status,
            plan_id=self._plan.plan_id,
            card_id=self._state.card_id,
            next_cycle=self._state.next_cycle,
            next_due_at=None if final else self._next_cycle_moment(),
            current_period_start=current[0] if current else None,
            current_period_end=current[1] if current else None,
            balance_cents=sum(i.balance_cents for i in self._state.open_invoices),
            open_invoices=list(self._state.open_invoices),
            history=list(self._state.history),
            cancel_at_term_end=self._state.cancel_at_term_end,
        )

    # ----------------------------------------------------------------- helpers
    @property
    def _plan(self) -> PlanTerms:
        assert self._state.plan is not None
        return self._state.plan

    @property
    def _schedule(self) -> dunning.DunningSchedule:
        return dunning.DunningSchedule(
            retry_offsets_days=tuple(self._plan.dunning_offsets_days),
            on_exhausted=self._plan.dunning_on_exhausted,
        )

    def _current_period(self) -> tuple[date, date] | None:
        if self._state.next_cycle == 0:
            return None
        return calendar.period_for(self._setup.start_date, self._state.next_cycle - 1, interval_months=self._plan.interval_months)

    def _refused_in_turn(self, refusal: str | None) -> CommandResult | None:
        """The answer to a command that the subscription, as it is once the command has its turn,
        refuses: validated earlier, it may have waited behind a command that changed everything (a
        cancel). None in runs without PATCH_COMMANDS_RECHECKED, which ran it anyway."""
        if refusal is None or not workflow.patched(PATCH_COMMANDS_RECHECKED):
            return None
        return CommandResult(False, self._state.status, refusal)

    def _command_key(self) -> str:
        """The running Update's id, which makes its event one per command, in runs that have
        PATCH_COMMAND_EVENT_KEYS; "" in older runs (one event per kind and cycle)."""
        info = workflow.current_update_info()
        if info is None or not workflow.patched(PATCH_COMMAND_EVENT_KEYS):
            return ""
        return info.id

    def _retry_now(self, waiting: tuple[WaitingFor, ...]) -> int:
        count = 0
        for invoice in self._state.open_invoices:
            if invoice.waiting_for in waiting:
                invoice.waiting_for = WaitingFor.RETRY
                invoice.next_attempt_at = workflow.now()
                count += 1
        self._wake = True
        return count


def due_instant_of(setup: SubscriptionSetup, plan: PlanTerms, cycle: int) -> datetime:
    """The calendar's due instant of `cycle` (before spreading). Module-level: the search attributes
    set at start (`live_search_attributes`) need it outside a running workflow."""
    minutes = setup.charge_at_minutes
    return calendar.due_instant(setup.start_date, cycle, tz=setup.timezone, interval_months=plan.interval_months, charge_at=time(minutes // 60, minutes % 60))


def live_search_attributes(setup: SubscriptionSetup, state: SubscriptionState) -> list[SearchAttributePair[Any]]:
    """The search attributes that change as a subscription lives: its status, and the due instant of
    its next cycle while it can still bill. The workflow keeps them current; whoever starts it sets
    them first (so the first run needs no upsert)."""
    pairs: list[SearchAttributePair[Any]] = [SearchAttributePair(SUBSCRIPTION_STATUS, state.status)]
    if state.status not in FINAL_SUBSCRIPTION_STATUSES and state.plan is not None:
        pairs.append(SearchAttributePair(NEXT_DUE_AT, due_instant_of(setup, state.plan, state.next_cycle)))
    return pairs


def status_refusal(command: str, status: str) -> str | None:
    """Why a subscription in `status` refuses `command` ("cancel", "pause", "resume", "change_card",
    "change_plan", "pay_now"), or None: one rule for the validator and for the command's turn."""
    if command == "resume":
        return None if status == SubscriptionStatus.PAUSED else f"only a paused subscription can be resumed; it is {status}"
    if status in FINAL_SUBSCRIPTION_STATUSES:
        return f"the subscription is {status}; no further commands are accepted"
    if command == "pause" and status != SubscriptionStatus.ACTIVE:
        return f"only an active subscription can be paused; it is {status}"
    return None


def _attempt_suffix(invoice: OpenInvoice, attempt: int) -> str:
    """What tells one attempt's event from another's in a cycle: the attempt number for the cycle's
    invoice (as ever), the invoice too for a one-off invoice billed in the same cycle."""
    return str(attempt) if invoice.kind == "subscription" else f"{invoice.invoice_id}:{attempt}"


def _refuse_if(refusal: str | None) -> None:
    """Reject an Update in its validator (nothing is recorded in the history)."""
    if refusal is not None:
        raise ValueError(refusal)


def _refused(error: ActivityError | ApplicationError) -> bool:
    """A permanent refusal (bad request, bad credentials, an error no retry mends): retrying it as an
    activity task would only fail again."""
    failure = error.cause if isinstance(error, ActivityError) else error
    return isinstance(failure, ApplicationError) and (failure.non_retryable or failure.type in (CHARGE_RETRY.non_retryable_error_types or ()))


def _cause(error: BaseException) -> str:
    while error.__cause__ is not None:
        error = error.__cause__
    return str(error)
