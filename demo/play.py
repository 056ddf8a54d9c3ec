"""Playing the demo year: enroll every client, let simulated time run, and step in where a clinic
would (a card update after a hard decline, a cancellation mid-term).

Simulated time comes from the dev server's per-workflow time skipping: ordinary subscriptions skip
their timers whenever idle; the ones a person steps into are started with the clock held and moved
with `fast_forward`, so the step happens on the intended day.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pendulum
import psycopg
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import TimeSkipper, TimeSkippingConfig
from temporalio.worker import Worker

from demo.progress import report_every
from demo.sandbox_process import SandboxProcess
from demo.seed import LOCATIONS, DemoClient, seed_clients, seed_clinics
from demo.summary import summarize
from demo.terminal import tap_when_shown, terminal_wait_bound
from demo.visit import Step, VisitDayWorkflow, visit_queue_of
from demo.workers import extra_workers, until_polling
from foundation.contracts import InvoiceCancellationInput, RefundRequest, TerminalPaymentInput, TerminalTiming
from foundation.ids import cancellation_workflow_id, customer_refund_key, new_id, refund_request_id, refund_workflow_id, terminal_workflow_id
from foundation.settings import SANDBOX_OID, SANDBOX_TOKEN
from gravity.client import GravityClient
from gravity.directory import GatewayDirectory
from gravity.sandbox.control import SandboxControl
from models.db import get_engine, session_scope
from models.migrate import upgrade_to_head
from models.subscriptions import ServiceRedemption
from operations import payments, subscriptions as commands
from operations.enrollment import EnrollRequest, enroll
from worker import build_worker
from workflows.invoice_cancellation import InvoiceCancellationWorkflow
from workflows.refund import RefundWorkflow
from workflows.terminal_payment import TerminalPaymentWorkflow

DEMO_DATABASE = "billing_demo"
FRONT_DESK = "front-desk-1"


@dataclass(frozen=True)
class DemoOptions:
    clients: int = 24
    months: int = 12
    seed: int = 7
    workers: int = 2


def fresh_demo_database(server_url: str) -> str:
    """Drop and recreate the demo's own database on the stack's server, migrated (never the
    configured database itself)."""
    admin = make_url(server_url).set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DEMO_DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DEMO_DATABASE}"')
    url = make_url(server_url).set(database=DEMO_DATABASE).render_as_string(hide_password=False)
    upgrade_to_head(url)
    return url


class DemoRun:
    """One demo run: its database, sandbox, worker and the stories of its clients."""

    def __init__(self, options: DemoOptions, client: Client, database_url: str, sandbox: SandboxProcess, *, temporal_address: str, namespace: str) -> None:
        self.options = options
        self.rng = random.Random(options.seed)
        self.run_tag = uuid.uuid4().hex[:6]
        self.task_queue = f"billing-demo-{self.run_tag}"
        self.skipper = TimeSkipper(client)
        # A second skipper for the stories a person steps into: their clocks start held. (The
        # first skipper's `with_time_skipping_disabled` would also hold every story that enrolls
        # concurrently.)
        self.held = TimeSkipper(client, config=TimeSkippingConfig(enabled=False))
        self.database_url = database_url
        self.temporal_address = temporal_address
        self.namespace = namespace
        self.engine: Engine = get_engine(database_url)
        self.sandbox = sandbox
        self.control = SandboxControl(sandbox.root_url)
        self.gateways = GatewayDirectory(sandbox.base_url, {SANDBOX_OID: SANDBOX_TOKEN}, tell_sandbox_time=True)
        self.today = pendulum.now("America/New_York").date()
        self._enrolled = 0
        self._say: Callable[[str], None] = lambda line: None
        self._started = time.monotonic()

    async def play(self, on_progress: Callable[[str], None], say: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
        """Play the year; `on_progress` hears each story's end, `say` a progress line every few seconds."""
        started = time.monotonic()
        self._say, self._started = say, started
        # The extra worker processes start first: they import while the clinics are seeded.
        helpers = extra_workers(
            self.options.workers - 1,
            database_url=self.database_url,
            temporal_address=self.temporal_address,
            namespace=self.namespace,
            task_queue=self.task_queue,
            gravity_url=self.sandbox.base_url,
        )
        with helpers:
            people = await self._seed()
            on_progress(f"seeded {len(people)} clients at 3 locations")
            say(f"seeded {len(people)} clients at 3 locations in {time.monotonic() - started:.0f} s")
            async with build_worker(self.skipper.client, self.engine, self.gateways, task_queue=self.task_queue):
                await until_polling(self.skipper.client, self.task_queue, self.options.workers)
                say(f"{self.options.workers} workers polling at {time.monotonic() - started:.0f} s")
                await self._deposits(people[: len(LOCATIONS)])
                stories = {asyncio.create_task(self._story(person, on_progress)): f"{person.client_id} ({person.role})" for person in people}
                stories[asyncio.create_task(self._front_desk(people, on_progress))] = "the front desk"
                ticker = asyncio.create_task(
                    report_every(self.engine, say, done=lambda: sum(story.done() for story in stories), total=len(stories), started=started)
                )
                try:
                    await until_all_end(stories, play_bound(self.options), self.task_queue)
                finally:
                    ticker.cancel()
        say(f"played in {time.monotonic() - started:.0f} s; checking the books against the gateway")
        await self.gateways.aclose()
        gateway_rows: list[Mapping[str, Any]] = [*self.control.transactions()]
        summary = summarize(self.engine, gateway_rows, wall_seconds=time.monotonic() - started)
        return {
            "clients": self.options.clients,
            "months": self.options.months,
            "seed": self.options.seed,
            "database_url": _shown(self.database_url),
            "task_queue": self.task_queue,
            **summary,
        }

    def _first_day(self) -> date:
        """The demo year's first day: the first of next month."""
        return (self.today.replace(day=1) + timedelta(days=32)).replace(day=1)

    async def _seed(self) -> list[DemoClient]:
        plans = seed_clinics(self.engine, months=self.options.months)
        async with GravityClient(self.sandbox.base_url, SANDBOX_OID, SANDBOX_TOKEN) as gravity:
            return await seed_clients(self.engine, gravity, plans, count=self.options.clients, first_day=self._first_day(), rng=self.rng)

    async def _deposits(self, people: list[DemoClient]) -> None:
        """A few clients prepay: the credit is applied to their first health-plan invoices."""
        for person in people:
            await payments.take_card_deposit(
                self.held.client,
                self.engine,
                client_id=person.client_id,
                card_id=person.card_id,
                amount_cents=6_000,
                request_id=f"{self.run_tag}:deposit:{person.client_id}",
                task_queue=self.task_queue,
            )
            person.notes.append("prepaid $60.00")

    async def _front_desk(self, people: list[DemoClient], on_progress: Callable[[str], None]) -> None:
        """The counter, one visit per location on a day of the demo year: an exam paid at the terminal
        with nobody typing the amount, a partial refund of it, and a second invoice cancelled after
        payment (voided). The movements run as children of the visit day's workflow, so they (and the
        sandbox's sales) are dated that day, not today; their inputs and ids are built as
        `operations.payments` builds them, whose starters can only start them on today's clock."""
        by_location = {person.location_id: person for person in people}
        visit_queue = visit_queue_of(self.task_queue)
        async with Worker(self.held.client, task_queue=visit_queue, workflows=[VisitDayWorkflow]):
            ahead = self._visit_day() - pendulum.now("UTC")
            visit = await self.held.client.start_workflow(VisitDayWorkflow.run, ahead.total_seconds(), id=f"{self.run_tag}:visit-day", task_queue=visit_queue)
            try:
                await self.skipper.fast_forward(visit, ahead)
                for location_id, person in by_location.items():
                    await self._visit(visit, location_id, person)
                    on_progress(f"front desk at {location_id}: terminal sale, refund, invoice cancelled")
                await visit.signal(VisitDayWorkflow.close)
                await visit.result()
            finally:
                with contextlib.suppress(RPCError):  # ended already: nothing to end
                    if (await visit.describe()).status == WorkflowExecutionStatus.RUNNING:
                        await visit.terminate(reason="the demo's front desk failed")

    def _visit_day(self) -> pendulum.DateTime:
        """Mid-morning on the 10th of the demo year's third month (its last, in a shorter demo)."""
        month = pendulum.date(self._first_day().year, self._first_day().month, 10).add(months=min(2, self.options.months - 1))
        return pendulum.datetime(month.year, month.month, month.day, 10, tz="America/New_York")

    async def _visit(self, visit: WorkflowHandle, location_id: str, person: DemoClient) -> None:
        at = await self.skipper.get_current_time(visit)  # the visit day's clock, not today
        exam = payments.create_counter_invoice_for(
            self.engine,
            client_id=person.client_id,
            location_id=location_id,
            lines=[payments.CounterLine("Sick visit exam", 8_500), payments.CounterLine("Ear cytology", 3_500)],
            at=at,
        )
        paid = await self._pay_at_terminal(visit, exam, location_id, f"{self.run_tag}:{location_id}:exam")
        request_id = f"{self.run_tag}:{location_id}:refund"
        refund = RefundRequest(request_key=request_id, payment_id=paid, amount_cents=2_000, reason="cytology not needed")
        refund_id = refund_workflow_id(refund_request_id(customer_refund_key(paid, request_id)))
        refunded = await (await self._step(visit, RefundWorkflow.run, "Refund", refund, refund_id)).result()
        if refunded.status != "done":
            raise RuntimeError(f"demo refund ended {refunded.status}: {refunded.message}")
        wrong = payments.create_counter_invoice_for(
            self.engine, client_id=person.client_id, location_id=location_id, lines=[payments.CounterLine("Dental cleaning", 24_000)], at=at
        )
        await self._pay_at_terminal(visit, wrong, location_id, f"{self.run_tag}:{location_id}:dental")
        cancellation = InvoiceCancellationInput(wrong, "billed to the wrong pet")
        await (await self._step(visit, InvoiceCancellationWorkflow.run, "InvoiceCancellation", cancellation, cancellation_workflow_id(wrong))).result()

    async def _step(self, visit: WorkflowHandle, run: Any, name: str, arg: Any, child_id: str) -> WorkflowHandle:
        """Hand the visit day its next movement; the movement's handle, once its workflow started."""
        await visit.signal(VisitDayWorkflow.step, Step(name, arg, child_id, self.task_queue))
        handle = self.held.client.get_workflow_handle_for(run, child_id)
        deadline = time.monotonic() + terminal_wait_bound(self.options.clients)
        while True:
            try:
                await handle.describe()
                return handle
            except RPCError as error:
                if error.status != RPCStatusCode.NOT_FOUND or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.1)

    async def _pay_at_terminal(self, visit: WorkflowHandle, invoice_id: str, location_id: str, request_id: str) -> str:
        attempt_key, payment_id = payments.terminal_attempt(request_id)
        request = TerminalPaymentInput(payment_id, attempt_key, location_id, FRONT_DESK, invoice_id=invoice_id, timing=TerminalTiming(poll_every_s=1))
        handle = await self._step(visit, TerminalPaymentWorkflow.run, "TerminalPayment", request, terminal_workflow_id(payment_id))
        await self._tap_when_ready(FRONT_DESK, handle, at=await self.skipper.get_current_time(handle))
        outcome = await handle.result()
        if outcome.status != "approved":
            raise RuntimeError(f"demo terminal payment ended {outcome.status}: {outcome.message}")
        return outcome.payment_id

    async def _tap_when_ready(self, device: str, handle: WorkflowHandle, *, at: datetime) -> None:
        """The client taps a card as soon as the terminal shows the amount, however busy the worker is;
        the sandbox dates the sale `at` (the payment's simulated time)."""

        async def still_running() -> bool:
            return (await handle.describe()).status == WorkflowExecutionStatus.RUNNING

        await tap_when_shown(self.control, device, still_running=still_running, bound_s=terminal_wait_bound(self.options.clients), at=at)

    async def _enroll(self, person: DemoClient, *, held: bool) -> WorkflowHandle:
        request = EnrollRequest(
            person.client_id,
            person.pet_id,
            person.plan_id,
            person.location_id,
            person.start_date,
            subscription_id=f"sub_{self.run_tag}_{person.client_id[-4:]}",
        )
        client = self.held.client if held else self.skipper.client
        enrollment = await enroll(client, self.engine, request, task_queue=self.task_queue)
        self._enrolled += 1
        if self._enrolled == self.options.clients:
            self._say(f"enrolled {self._enrolled} clients at {time.monotonic() - self._started:.0f} s")
        return client.get_workflow_handle(enrollment.workflow_id)

    def _days_to(self, person: DemoClient, after_start: int) -> timedelta:
        return timedelta(days=(person.start_date - self.today).days + after_start)

    async def _story(self, person: DemoClient, on_progress: Callable[[str], None]) -> None:
        story = getattr(self, f"_story_{person.role}", self._story_ordinary)
        await story(person)
        on_progress(f"{person.client_id}: {person.role}")

    async def _story_ordinary(self, person: DemoClient) -> None:
        handle = await self._enroll(person, held=False)
        await handle.result()

    _story_yearly = _story_ordinary

    async def _story_soft_decline(self, person: DemoClient) -> None:
        self.control.decline_next(person.card_ref, self.rng.choice(("insufficient_funds", "do_not_honor")), count=self.rng.choice((1, 2)))
        await self._story_ordinary(person)

    async def _story_hard_decline(self, person: DemoClient) -> None:
        """An expired card: no retries; the clinic gets a new card on file, which is charged at once."""
        self.control.decline_next(person.card_ref, "expired_card", count=1)
        handle = await self._enroll(person, held=True)
        await self.skipper.fast_forward(handle, self._days_to(person, 6))
        assert person.spare_card_id is not None
        await commands.change_card(self.skipper.client, _sub(handle), person.spare_card_id)
        await self.skipper.fast_forward(handle)
        await handle.result()

    async def _story_exhausted(self, person: DemoClient) -> None:
        """Every retry fails: suspended; weeks later a new card pays the overdue invoice: reactivated."""
        self.control.decline_next(person.card_ref, "do_not_honor", count=5)
        handle = await self._enroll(person, held=True)
        await self.skipper.fast_forward(handle, self._days_to(person, 20))
        await self.skipper.fast_forward(handle, timedelta(days=12))
        assert person.spare_card_id is not None
        await commands.change_card(self.skipper.client, _sub(handle), person.spare_card_id)
        await self.skipper.fast_forward(handle)
        await handle.result()

    async def _story_cancel_settlement(self, person: DemoClient) -> None:
        """Two exams used, then the family moves away mid-period: settled per plan policy."""
        handle = await self._enroll(person, held=True)
        mid_term = min(100, max(10, self.options.months * 30 - 20))  # inside the term, whatever its length
        await self.skipper.fast_forward(handle, self._days_to(person, mid_term))
        visit = await self.skipper.get_current_time(handle)  # the subscription's simulated day, not today
        with session_scope(self.engine) as session:
            for _ in range(2):
                session.add(ServiceRedemption(id=new_id("red"), subscription_id=_sub(handle), service_code="EXAM", retail_cents=6_500, redeemed_at=visit))
        await commands.cancel(self.skipper.client, _sub(handle), mode="now", reason="moving away")
        await handle.result()


PLAY_BASE_S = 300.0
PLAY_PER_CLIENT_YEAR_S = 2.0


def play_bound(options: DemoOptions) -> float:
    """How long the stories may take in all: generous (five minutes, plus two seconds per client-year,
    several times what a busy two-core machine needs), only there so a stuck run ends with names."""
    return PLAY_BASE_S + PLAY_PER_CLIENT_YEAR_S * options.clients * options.months / 12


async def until_all_end(stories: dict[asyncio.Task[None], str], bound_s: float, task_queue: str) -> None:
    """Wait for every story to end; the first failure, or the bound, ends the others and names them."""
    deadline = time.monotonic() + bound_s
    pending = set(stories)
    while pending:
        done, pending = await asyncio.wait(pending, timeout=max(0.0, deadline - time.monotonic()), return_when=asyncio.FIRST_EXCEPTION)
        failed = [task for task in done if not task.cancelled() and task.exception() is not None]
        if failed or (pending and time.monotonic() >= deadline):
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            if failed:
                raise failed[0].exception()  # type: ignore[misc]  # not None: filtered above
            raise RuntimeError(unfinished_message([stories[task] for task in pending], bound_s, task_queue))


def unfinished_message(labels: list[str], bound_s: float, task_queue: str) -> str:
    """What the demo waited for and did not see: the stories still playing, the first few by name."""
    shown = ", ".join(sorted(labels)[:5]) + (f" and {len(labels) - 5} more" if len(labels) > 5 else "")
    return f"the demo waited {bound_s:.0f} s for every story to end; still playing: {shown} (their workflows are on task queue {task_queue})"


def _shown(url: str) -> str:
    """The demo database's URL for the report, never with a password in it."""
    return make_url(url).render_as_string(hide_password=True)


def _sub(handle: WorkflowHandle) -> str:
    return handle.id.split(":", 1)[1]


def today_in(tz: str) -> date:
    return pendulum.now(tz).date()
