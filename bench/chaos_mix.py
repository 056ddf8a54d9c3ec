"""The front desk and the clients during the chaos: operations racing each other and the cycles.

While the subscriptions bill, a driver draws operations from the seed and runs them concurrently,
through the same service layer the API and the CLI call (`operations.payments`,
`operations.subscriptions`), on a subset of the subscriptions (the rest stay a control group whose
dunning is still checked exactly): terminal payments of open invoices with the customer acting at
the sandbox's device, deposits by card and at the terminal and their refunds, partial and full
refunds, invoice cancellations, cancel now and at term end, pay now, card and plan changes, pause
and resume.

A refusal (`PaymentRefused`, a rejected Update, a terminal payment the workflow refused) is an
expected outcome and is counted, not raised. Whatever the servers' faults make fail for a while
(Temporal restarting, PostgreSQL stopped, the gateway's 5xx) is retried with the same request id,
so a retry is the same operation, never a second one. Each operation draws its own choices from a
generator seeded when it is launched, so the script does not depend on how operations interleave.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, select
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from bench.population import BENCH_DEVICES, Member
from foundation.contracts import TerminalTiming
from foundation.settings import SANDBOX_OID
from gravity.directory import GatewayDirectory
from gravity.errors import TransientGravityError, UnknownOutcome
from gravity.sandbox.control import SandboxControl, SandboxControlError
from models.billing import Deposit, Invoice, Payment
from models.clinic import SavedCard
from operations import payments, subscriptions
from operations.payments import PaymentRefused, TerminalRequest
from operations.subscriptions import CommandRefused

T = TypeVar("T")

DEVICES = BENCH_DEVICES
# Terminal payments run in real time (not skipped): short waits keep a walked-away customer from
# holding the run for half an hour, while still going through the counter timeout and the background.
TERMINAL_TIMING = TerminalTiming(poll_every_s=1, counter_timeout_s=15, background_every_s=2, background_for_s=15)
# How often each operation is drawn (relative weights).
WEIGHTS: dict[str, int] = {
    "terminal_payment": 16,
    "terminal_deposit": 3,
    "card_deposit": 7,
    "deposit_refund": 5,
    "refund_partial": 7,
    "refund_full": 5,
    "invoice_cancel": 5,
    "cancel_now": 3,
    "cancel_term_end": 3,
    "pay_now": 9,
    "change_card": 8,
    "change_plan": 6,
    "pause": 6,
    "resume": 7,
}
OPERATION_KINDS = tuple(WEIGHTS)
# What the customer does at the device, and how often.
DEVICE_ACTIONS: dict[str, int] = {"approve": 55, "tip": 10, "decline": 12, "partial": 6, "cancel": 5, "walk_away": 4, "staff_cancel": 8}
DEPOSIT_AMOUNTS = (1_000, 2_500, 4_500, 6_000)
# Faults the run injects make calls fail for a while; the same operation is tried again for this long.
PATIENCE_S = 60.0
RESULT_TIMEOUT_S = 180.0
RESULT_POLL_S = 30.0  # one ask for a workflow's result, before asking again
# An Update still running after this long is slow: its workflow's turn came late (a charge ahead of
# it retrying through a PostgreSQL stop, say). Counted, and awaited on.
UPDATE_TIMEOUT_S = 120.0
# An Update still running after this long is stuck: counted, not awaited.
UPDATE_GIVE_UP_S = 600.0


class UpdateStuck(Exception):
    """An Update the workflow accepted (or never answered) that did not finish in time."""


class NoTarget(Exception):
    """Nothing for this operation to act on now (no open invoice, no free device): not attempted."""


@dataclass
class Tally:
    """One operation kind's counts: every attempt ends in exactly one of the four outcomes."""

    attempted: int = 0
    succeeded: int = 0
    refused: int = 0
    other: int = 0  # ended without moving money or changing state: a decline, a walk-away, a timeout
    errors: int = 0  # an exception nobody expected: listed in `MixReport.errors`

    def as_dict(self) -> dict[str, int]:
        return {"attempted": self.attempted, "succeeded": self.succeeded, "refused": self.refused, "other": self.other, "errors": self.errors}


@dataclass(frozen=True)
class CancelMark:
    """A cancel-now that returned: the sandbox's clock then, and the subscription's invoices then.
    Nothing may be charged on the subscription after it, nor a new cycle invoiced."""

    at: datetime
    invoice_ids: frozenset[str]


@dataclass
class MixReport:
    tallies: dict[str, Tally] = field(default_factory=lambda: {kind: Tally() for kind in OPERATION_KINDS})
    errors: list[str] = field(default_factory=list)
    cancels: dict[str, CancelMark] = field(default_factory=dict)
    unfinished: int = 0  # operations still running when the run gave up waiting
    updates_slow: int = 0  # Updates that finished, but only after UPDATE_TIMEOUT_S
    updates_stuck: int = 0  # Updates that had not finished after UPDATE_GIVE_UP_S
    device_actions: Counter[str] = field(default_factory=Counter)
    declines_armed: int = 0  # declines scripted so that invoices stay open for the counter
    refusals: dict[str, Counter[str]] = field(default_factory=dict)
    failures: dict[str, Counter[str]] = field(default_factory=dict)

    def refusal_reasons(self, top: int = 3) -> dict[str, dict[str, int]]:
        """The most frequent refusal messages of each kind, ids masked, for reading the counts."""
        return {kind: dict(reasons.most_common(top)) for kind, reasons in sorted(self.refusals.items())}

    def error_reasons(self, top: int = 3) -> dict[str, dict[str, int]]:
        """The most frequent unexpected errors of each kind, ids masked."""
        return {kind: dict(reasons.most_common(top)) for kind, reasons in sorted(self.failures.items())}

    def operations(self) -> dict[str, dict[str, int]]:
        return {kind: tally.as_dict() for kind, tally in self.tallies.items()}


@dataclass(frozen=True)
class MixSite:
    """Where the operations act: the engine's parts the front desk talks to, and the clinic's setup."""

    engine: Engine
    client: Client  # a plain client: terminal and cancellation workflows run in real time
    gateways: GatewayDirectory
    control: SandboxControl
    task_queue: str
    location_id: str
    plan_ids: tuple[str, ...]  # the plans a change picks from
    spare_cards: dict[str, str]  # subscription id -> the second card


class OperationMix:
    """Draws operations from the seed until told to stop, and runs them concurrently."""

    def __init__(self, site: MixSite, members: list[Member], *, seed: int, calm_s: tuple[float, float] = (0.05, 0.3), concurrency: int = 8) -> None:
        self.site = site
        self.members = members
        self.rng = random.Random(f"{seed}:mix")
        self.calm_s = calm_s
        self.report = MixReport()
        self._gate = asyncio.Semaphore(concurrency)
        self._free_devices = list(DEVICES)
        self._paused: set[str] = set()
        self._cards: dict[str, str] = {}  # subscription id -> the card a change made its own
        self._stopping = False
        self.ended: set[str] = set()  # subscriptions whose workflow has ended (told by the run)
        self._tasks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ the loop
    async def run(self, stop: asyncio.Event, *, finish_timeout_s: float = RESULT_TIMEOUT_S) -> MixReport:
        """Launch an operation after each calm until `stop`, then wait for those still running."""
        kinds, weights = list(WEIGHTS), list(WEIGHTS.values())
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.rng.uniform(*self.calm_s))
                break
            except TimeoutError:
                pass
            kind = self.rng.choices(kinds, weights)[0]
            member = self._draw_member()
            task = asyncio.create_task(self._run_one(kind, member, random.Random(self.rng.getrandbits(64))))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self._stopping = True
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=finish_timeout_s)
            self.report.unfinished = len(pending)
            for task in pending:
                task.cancel()
        return self.report

    def _draw_member(self) -> Member:
        """Mostly a subscription still billing: on an ended one only the money operations act."""
        live = [m for m in self.members if m.subscription_id not in self.ended]
        return self.rng.choice(live if live and self.rng.random() < 0.9 else self.members)

    async def _run_one(self, kind: str, member: Member, rng: random.Random) -> None:
        operation: Callable[[Member, random.Random], Awaitable[str]] = getattr(self, f"_{kind}")
        tally = self.report.tallies[kind]
        async with self._gate:
            if self._stopping:
                return  # still queued when the run ended: never attempted
            try:
                outcome = await operation(member, rng)
            except NoTarget:
                return
            except (PaymentRefused, CommandRefused) as refusal:
                outcome = "refused"
                self.report.refusals.setdefault(kind, Counter())[_masked(str(refusal))] += 1
            except Exception as error:  # noqa: BLE001 - counted and shown: the run goes on
                outcome = "errors"
                self.report.errors.append(f"{kind} {member.subscription_id}: {type(error).__name__}: {error}"[:300])
                self.report.failures.setdefault(kind, Counter())[_masked(f"{type(error).__name__}: {error}")] += 1
        tally.attempted += 1
        setattr(tally, outcome, getattr(tally, outcome) + 1)

    # ------------------------------------------------------------------ at the counter terminal
    async def _terminal_payment(self, member: Member, rng: random.Random) -> str:
        """Pay an open invoice of any subscription in the mix at the counter (they are open only
        between a decline and what follows it); with none open, script a decline on the drawn
        one's card, so its next cycle stays open (in dunning after a soft decline, waiting for a
        new card after a hard one) for a later terminal payment, pay-now or card change to race."""
        invoice_id = await self._db(self._open_invoice, rng)
        if invoice_id is None:
            card_id = self._cards.get(member.subscription_id) or member.workflow_input.state.card_id or ""
            reason = "expired_card" if rng.random() < 0.3 else "insufficient_funds"
            await self._db(self._arm_decline, card_id, reason, rng.choice((1, 2)))
            self.report.declines_armed += 1
            raise NoTarget
        request = TerminalRequest(location_id=self.site.location_id, device_name="", invoice_id=invoice_id, request_id=_hex(rng))
        return await self._at_terminal(request, rng)

    async def _terminal_deposit(self, member: Member, rng: random.Random) -> str:
        setup = member.workflow_input.setup
        request = TerminalRequest(
            location_id=self.site.location_id,
            device_name="",
            purpose="deposit",
            client_id=setup.client_id,
            amount_cents=rng.choice(DEPOSIT_AMOUNTS),
            request_id=_hex(rng),
        )
        return await self._at_terminal(request, rng)

    async def _at_terminal(self, request: TerminalRequest, rng: random.Random) -> str:
        """Send the sale to a free device, let the customer act there, and wait for the outcome."""
        if not self._free_devices:
            raise NoTarget
        device = self._free_devices.pop(rng.randrange(len(self._free_devices)))
        try:
            request = TerminalRequest(**{**request.__dict__, "device_name": device})
            handle = await self._patiently(
                lambda: payments.start_terminal_payment(
                    self.site.client, self.site.engine, self.site.gateways, request, task_queue=self.site.task_queue, timing=TERMINAL_TIMING
                )
            )
            action = rng.choices(list(DEVICE_ACTIONS), list(DEVICE_ACTIONS.values()))[0]
            self.report.device_actions[action] += 1
            await asyncio.sleep(rng.uniform(0.2, 3.0))
            await self._act_at_device(device, action, handle, request, rng)
            outcome = await patient_result(handle)
        finally:
            self._free_devices.append(device)
        status = str(outcome.status)
        if status in ("approved", "partial"):
            return "succeeded"
        return "refused" if status == "refused" else "other"

    async def _act_at_device(self, device: str, action: str, handle: WorkflowHandle[Any, Any], request: TerminalRequest, rng: random.Random) -> None:
        """The customer's move once the sale shows on the device (tried until it shows, briefly)."""
        if action == "staff_cancel":
            _, payment_id = payments.terminal_attempt(request.request_id or "")
            cancel = asyncio.create_task(self._staff_cancel(payment_id))
            if rng.random() < 0.5:  # the customer taps while staff cancel: one of them wins
                await self._present(device, "approve")
            await cancel
            return
        if action == "walk_away":
            await self._device_call(lambda: self.site.control.walk_away(SANDBOX_OID, device))
        elif action == "cancel":
            await self._device_call(lambda: self.site.control.cancel_on_device(SANDBOX_OID, device))
        else:
            await self._present(device, action, tip_cents=rng.choice((100, 350, 900)) if action == "tip" else None)

    async def _present(self, device: str, action: str, *, tip_cents: int | None = None) -> None:
        outcome = {"approve": "approve", "tip": "approve", "decline": "decline", "partial": "partial"}[action]
        reason = "insufficient_funds" if outcome == "decline" else None
        await self._device_call(lambda: self.site.control.present_card(SANDBOX_OID, device, outcome, reason=reason, tip_cents=tip_cents))

    async def _device_call(self, call: Callable[[], Any], *, tries: int = 25) -> None:
        """Until a sale waits on the device (a 409 says none does yet), or give up: the customer left."""
        for _ in range(tries):
            try:
                await asyncio.to_thread(call)
                return
            except SandboxControlError as error:
                if " 409 " not in str(error):
                    raise
            await asyncio.sleep(0.3)

    async def _staff_cancel(self, payment_id: str) -> None:
        with contextlib.suppress(Exception):  # refused when the customer finished first: that is the race
            await payments.cancel_terminal_payment(self.site.client, payment_id)

    # ------------------------------------------------------------------ deposits and refunds
    async def _card_deposit(self, member: Member, rng: random.Random) -> str:
        setup = member.workflow_input.setup
        card_id = member.workflow_input.state.card_id or ""
        amount, request_id = rng.choice(DEPOSIT_AMOUNTS), _hex(rng)
        movement = await self._patiently(
            lambda: payments.take_card_deposit(
                self.site.client,
                self.site.engine,
                client_id=setup.client_id,
                card_id=card_id,
                amount_cents=amount,
                request_id=request_id,
                task_queue=self.site.task_queue,
                wait_s=RESULT_TIMEOUT_S,
            )
        )
        return "succeeded" if movement.result is not None and movement.result.status in ("approved", "partial") else "other"

    async def _deposit_refund(self, member: Member, rng: random.Random) -> str:
        deposit_id = await self._db(self._held_deposit, member.workflow_input.setup.client_id, rng)
        if deposit_id is None:
            raise NoTarget
        request_id = _hex(rng)
        movement = await self._patiently(
            lambda: payments.refund_deposit(
                self.site.client, self.site.engine, deposit_id=deposit_id, request_id=request_id, task_queue=self.site.task_queue, wait_s=RESULT_TIMEOUT_S
            )
        )
        return "succeeded" if movement.result is not None and movement.result.amount_cents > 0 else "other"

    async def _refund_partial(self, member: Member, rng: random.Random) -> str:
        return await self._refund(member, rng, partial=True)

    async def _refund_full(self, member: Member, rng: random.Random) -> str:
        return await self._refund(member, rng, partial=False)

    async def _refund(self, member: Member, rng: random.Random, *, partial: bool) -> str:
        found = await self._db(self._refundable_payment, member.workflow_input.setup.client_id, rng)
        if found is None:
            raise NoTarget
        payment_id, refundable = found
        amount = rng.randint(1, refundable - 1) if partial and refundable > 1 else None
        request_id = _hex(rng)
        movement = await self._patiently(
            lambda: payments.refund_payment(
                self.site.client,
                self.site.engine,
                payment_id=payment_id,
                amount_cents=amount,
                request_id=request_id,
                reason="chaos",
                task_queue=self.site.task_queue,
                wait_s=RESULT_TIMEOUT_S,
            )
        )
        return "succeeded" if movement.result is not None and movement.result.amount_cents > 0 else "other"

    async def _invoice_cancel(self, member: Member, rng: random.Random) -> str:
        invoice_id = await self._db(self._cancellable_invoice, member.subscription_id, rng)
        if invoice_id is None:
            raise NoTarget
        handle = await self._patiently(
            lambda: payments.cancel_invoice(self.site.client, self.site.engine, invoice_id=invoice_id, reason="chaos", task_queue=self.site.task_queue)
        )
        outcome = await patient_result(handle)
        return "succeeded" if outcome.status == "void" else "other"

    # ------------------------------------------------------------------ the subscription's Updates
    async def _cancel_now(self, member: Member, rng: random.Random) -> str:
        result = await self._update(
            member.subscription_id,
            lambda update_id: subscriptions.cancel(self.site.client, member.subscription_id, mode="now", reason="chaos", update_id=update_id),
        )
        if not result.accepted:
            return "refused"
        clock = await asyncio.to_thread(self.site.control.clock)
        moment = datetime.fromisoformat(str(clock["now"]))
        invoices = await self._db(self._invoice_ids, member.subscription_id)
        self.report.cancels.setdefault(member.subscription_id, CancelMark(moment, invoices))
        return "succeeded"

    async def _cancel_term_end(self, member: Member, rng: random.Random) -> str:
        return await self._command(
            member.subscription_id,
            lambda update_id: subscriptions.cancel(self.site.client, member.subscription_id, mode="term_end", reason="chaos", update_id=update_id),
        )

    async def _pay_now(self, member: Member, rng: random.Random) -> str:
        return await self._command(
            member.subscription_id, lambda update_id: subscriptions.pay_now(self.site.client, member.subscription_id, update_id=update_id)
        )

    async def _change_card(self, member: Member, rng: random.Random) -> str:
        """Mostly to the card the subscription does not have (asking for the one it has is refused)."""
        cards = (member.workflow_input.state.card_id or "", self.site.spare_cards[member.subscription_id])
        current = self._cards.get(member.subscription_id, cards[0])
        other = cards[1] if current == cards[0] else cards[0]
        card_id = other if rng.random() < 0.85 else current
        outcome = await self._command(
            member.subscription_id, lambda update_id: subscriptions.change_card(self.site.client, member.subscription_id, card_id, update_id=update_id)
        )
        if outcome == "succeeded":
            self._cards[member.subscription_id] = card_id
        return outcome

    async def _change_plan(self, member: Member, rng: random.Random) -> str:
        plan_id = rng.choice(self.site.plan_ids)
        return await self._command(
            member.subscription_id, lambda update_id: subscriptions.change_plan(self.site.client, member.subscription_id, plan_id, update_id=update_id)
        )

    async def _pause(self, member: Member, rng: random.Random) -> str:
        outcome = await self._command(
            member.subscription_id, lambda update_id: subscriptions.pause(self.site.client, member.subscription_id, update_id=update_id)
        )
        if outcome == "succeeded":
            self._paused.add(member.subscription_id)
        return outcome

    async def _resume(self, member: Member, rng: random.Random) -> str:
        """Mostly a subscription this driver paused (a resume of an active one is only a refusal)."""
        paused = sorted(self._paused)
        subscription_id = rng.choice(paused) if paused and rng.random() < 0.8 else member.subscription_id
        outcome = await self._command(subscription_id, lambda update_id: subscriptions.resume(self.site.client, subscription_id, update_id=update_id))
        self._paused.discard(subscription_id)
        return outcome

    async def _command(self, subscription_id: str, send: Callable[[str], Awaitable[Any]]) -> str:
        result = await self._update(subscription_id, send)
        return "succeeded" if result.accepted else "refused"

    async def _update_or_refusal(self, subscription_id: str, send: Callable[[str], Awaitable[T]], update_id: str) -> T:
        """An Update the server aborted because its workflow closed meanwhile is the same answer
        as "the subscription has finished" (the service layer lets it through as an RPC error). An
        answer lost to an RPC timeout (a server restart) is asked for again under the same id."""
        try:
            return await send(update_id)
        except WorkflowUpdateRPCTimeoutOrCancelledError as error:
            raise RPCError(str(error) or "update RPC timed out", RPCStatusCode.DEADLINE_EXCEEDED, b"") from None
        except RPCError as error:
            if "aborted by closing workflow" in str(error):
                raise CommandRefused(f"{error} (subscription {subscription_id})") from None
            raise

    async def _update(self, subscription_id: str, send: Callable[[str], Awaitable[T]]) -> T:
        """An Update, counted as slow when it finishes after UPDATE_TIMEOUT_S, and given up on (counted
        as stuck) when it has not finished in UPDATE_GIVE_UP_S."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        update_id = uuid.uuid4().hex
        try:
            result = await asyncio.wait_for(self._patiently(lambda: self._update_or_refusal(subscription_id, send, update_id)), timeout=UPDATE_GIVE_UP_S)
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
            self.report.updates_stuck += 1
            raise UpdateStuck(f"the Update on {subscription_id} had not finished after {UPDATE_GIVE_UP_S:.0f} s") from None
        if loop.time() - started > UPDATE_TIMEOUT_S:
            self.report.updates_slow += 1
        return result

    # ------------------------------------------------------------------ what to act on (the database)
    def _arm_decline(self, session: Session, card_id: str, reason: str, count: int) -> None:
        card = session.get(SavedCard, card_id)
        if card is not None:
            self.site.control.decline_next(card.gravity_ref, reason, count=count)

    def _open_invoice(self, session: Session, rng: random.Random) -> str | None:
        ids = [m.subscription_id for m in self.members]
        rows = session.exec(select(Invoice.id).where(col(Invoice.subscription_id).in_(ids), Invoice.status == "open").order_by(Invoice.id)).all()
        return rng.choice(rows) if rows else None

    def _cancellable_invoice(self, session: Session, subscription_id: str, rng: random.Random) -> str | None:
        rows = session.exec(select(Invoice.id).where(Invoice.subscription_id == subscription_id, Invoice.status != "void").order_by(Invoice.id)).all()
        return rng.choice(rows) if rows else None

    def _invoice_ids(self, session: Session, subscription_id: str) -> frozenset[str]:
        return frozenset(session.exec(select(Invoice.id).where(Invoice.subscription_id == subscription_id)).all())

    def _held_deposit(self, session: Session, client_id: str, rng: random.Random) -> str | None:
        rows = session.exec(
            select(Deposit.id)
            .where(Deposit.client_id == client_id, Deposit.source == "deposit", col(Deposit.payment_id).is_not(None), Deposit.remaining_cents > 0)
            .order_by(Deposit.id)
        ).all()
        return rng.choice(rows) if rows else None

    def _refundable_payment(self, session: Session, client_id: str, rng: random.Random) -> tuple[str, int] | None:
        rows = session.exec(
            select(Payment)
            .where(Payment.client_id == client_id, Payment.status == "approved", Payment.method != "credit", Payment.approved_cents > Payment.refunded_cents)
            .order_by(Payment.id)
        ).all()
        if not rows:
            return None
        payment = rng.choice(rows)
        return payment.id, payment.approved_cents - payment.refunded_cents

    async def _db(self, read: Callable[..., T], *args: Any) -> T:
        def run() -> T:
            with Session(self.site.engine) as session:
                return read(session, *args)

        return await self._patiently(lambda: asyncio.to_thread(run))

    # ------------------------------------------------------------------ patience with the faults
    async def _patiently(self, call: Callable[[], Awaitable[T]]) -> T:
        """The same call again while a fault lasts (Temporal or PostgreSQL away, a gateway 5xx)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PATIENCE_S
        while True:
            try:
                return await call()
            except (RPCError, OperationalError, TransientGravityError, UnknownOutcome, OSError) as error:
                if loop.time() > deadline or (isinstance(error, RPCError) and not _transient_rpc(error)):
                    raise
            await asyncio.sleep(1.0)


async def patient_result(handle: WorkflowHandle[Any, Any], timeout_s: float = RESULT_TIMEOUT_S) -> Any:
    """The workflow's result, asked again while Temporal restarts (its long poll is cut then, or
    left hanging on a connection the server dropped: each ask is bounded)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        try:
            return await asyncio.wait_for(handle.result(), timeout=RESULT_POLL_S)
        except TimeoutError:
            if loop.time() > deadline:
                raise
            continue
        except RPCError as error:
            if loop.time() > deadline or not _transient_rpc(error):
                raise
        await asyncio.sleep(1.0)


def _transient_rpc(error: RPCError) -> bool:
    """Worth asking again: the server away or restarting, or the workflow's task being retried after
    a worker died mid-task (the server holds new Updates back until that task completes)."""
    if "Workflow Task in failed state" in str(error):
        return True
    return error.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED, RPCStatusCode.UNKNOWN)


def _masked(message: str) -> str:
    """A refusal's message with ids and amounts masked, so equal reasons count together."""
    return re.sub(r"\b\d+\b", "N", re.sub(r"\b(?:sub|inv|pay|dep|card2?|cli|plan|ref)_[A-Za-z0-9_]+", "<id>", message))[:120]


def _hex(rng: random.Random) -> str:
    """A request id drawn from the operation's own generator: the same seed asks with the same ids."""
    return uuid.UUID(int=rng.getrandbits(128)).hex
