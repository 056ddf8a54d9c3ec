"""The chaos run: months of billing for many subscriptions while everything that can fail, fails.

S subscriptions at one clinic bill M simulated months (the dev server's time skipping) on W worker
processes. Before the first charge a lost answer, a 5xx and a 429 are armed at the gateway, so even
a short run meets them. Meanwhile a driver, following a script drawn from the seed, at random moments:

- SIGKILLs a worker (mid-charge or not) and starts a replacement a moment later;
- makes the sandbox answer charges or lookups with 500, 429, a slow answer (past the client's
  timeout) or a **lost response after commit** (the sale is made, the answer never arrives);
- cuts every PostgreSQL connection of the billing database (`pg_terminate_backend`);
- scripts card declines: soft ones (retried on the dunning schedule, sometimes until it runs out and
  the subscription is suspended) and hard ones (wait for a new card);
- SIGKILLs the Temporal dev server and starts it again on the same port and store, and stops the
  embedded PostgreSQL for 10-30 s, when this run started them (`bench.chaos_servers`).

With the mix on, the front desk and the clients act meanwhile on part of the subscriptions
(`bench.chaos_mix`): terminal payments, deposits, refunds, cancellations, card and plan changes.

When every workflow has ended and a last janitor sweep has resolved what nobody was finishing, the
verdict is read from the gateway's list, the database and Temporal's histories: the exact cycle and
dunning replay of `bench.invariants` for the subscriptions nobody touched, and what holds for any
correct design for all (`bench.money_invariants`, `bench.workflow_checks`). The script of actions
is reproducible from the seed; how it interleaves with the billing depends on the machine's timing,
which is the point.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import time as wall, timedelta
from typing import Any, TypeVar

import pendulum
import psycopg
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.service import RPCError
from temporalio.testing import TimeSkipper

from bench.chaos_mix import DEVICES, UPDATE_GIVE_UP_S, MixReport, MixSite, OperationMix
from bench.chaos_servers import POSTGRES_STOP, TEMPORAL_RESTART, OwnedPostgres, OwnedTemporal, ServerFaults
from bench.database import admin_url, fresh_database
from bench.invariants import Subscriber, Terms, Verdict, check_cycles
from bench.money_invariants import MoneyVerdict, check_money
from bench.population import (
    PRICE_CENTS,
    TIMEZONE,
    Member,
    enroll_members,
    local_today,
    save_spare_cards,
    seed_clinic,
    seed_second_plan,
    start_workflows,
)
from bench.workers import WorkerPool, WorkerSpec
from bench.workflow_checks import WorkflowVerdict, check_workflows, stuck_workflows
from demo.leftovers import terminate_running
from foundation.contracts import JanitorInput
from foundation.converter import data_converter
from foundation.ids import subscription_workflow_id
from foundation.settings import SANDBOX_OID, SANDBOX_TOKEN
from gravity.directory import GatewayDirectory
from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from models.billing import Invoice
from models.db import get_engine
from workflows.dunning import DEFAULT_SCHEDULE
from workflows.money_janitor import MoneyJanitorWorkflow

T = TypeVar("T")

CHAOS_DATABASE = "billing_chaos"
WORKER_KILL, GATEWAY, DB_CUT, DECLINE = "worker_kill", "gateway", "db_cut", "decline"
FAULT_KINDS = (WORKER_KILL, GATEWAY, DB_CUT, DECLINE, TEMPORAL_RESTART, POSTGRES_STOP)
SECOND_PLAN_PRICE_CENTS = 6_000
STUCK_LOOK_S = 20.0  # how often the run looks for workflows stuck on a retry
# How long one must stay past the attempt limit to count as stuck: a PostgreSQL stop (up to 30 s)
# also drives attempts past it under time skipping, and those get through once it is back.
STUCK_GRACE_S = 90.0
SOFT_REASONS = ("insufficient_funds", "do_not_honor", "generic")
HARD_REASONS = ("expired_card", "lost_or_stolen")
OPENING_GATEWAY_FAULTS = ("lost", "500", "429")


@dataclass(frozen=True)
class ChaosOptions:
    subscriptions: int = 6
    months: int = 2
    workers: int = 2
    seed: int = 1
    calm_s: tuple[float, float] = (0.4, 1.6)  # pause between two chaos actions
    timeout_s: float = 1800.0
    database: str = CHAOS_DATABASE
    mix: bool = False  # operations at the front desk racing the cycles (`bench.chaos_mix`)
    mix_share: float = 0.6  # the share of subscriptions they act on; the rest are the control group
    faults: frozenset[str] = frozenset(FAULT_KINDS)


class Chaos:
    """The driver: draws actions from the seed and applies them until told to stop."""

    def __init__(self, options: ChaosOptions, pool: WorkerPool, control: SandboxControl, database_url: str, members: list[Member]) -> None:
        self.options = options
        self.rng = random.Random(options.seed)
        self.pool = pool
        self.control = control
        self.database_url = database_url
        self.members = members
        self.faults: Counter[str] = Counter()
        self._restarts: list[asyncio.Task[None]] = []
        self._starting = 0  # replacements on their way

    def initial_declines(self) -> None:
        """Some cards start troubled: a soft decline or two, an exhausted schedule, a hard decline."""
        for member in self.members:
            draw = self.rng.random()
            if draw < 0.2:
                self._decline(member, self.rng.choice(SOFT_REASONS), self.rng.choice((1, 2)))
            elif draw < 0.25:
                self._decline(member, self.rng.choice(SOFT_REASONS), 1 + len(DEFAULT_SCHEDULE.retry_offsets_days))
            elif draw < 0.3:
                self._decline(member, self.rng.choice(HARD_REASONS), 1)

    def opening_faults(self) -> None:
        """Arm a lost answer, a 5xx and a 429 at the gateway before the first charge, so that every
        run meets them however short it is: simulated time is fast, and a small run can end before
        the random draws reach the gateway."""
        if GATEWAY not in self.options.faults:
            return
        for kind in OPENING_GATEWAY_FAULTS:
            self.control.inject_fault("tokenizedPayment", kind, count=1)
            self.faults[f"tokenizedPayment:{kind}"] += 1

    def _decline(self, member: Member, reason: str, count: int) -> None:
        if DECLINE not in self.options.faults:
            return
        self.control.decline_next(member.card_ref, reason, count=count)
        self.faults[f"decline:{'hard' if reason in HARD_REASONS else 'soft'}"] += 1

    async def run(self, stop: asyncio.Event) -> None:
        """Act after each calm until `stop`. The first action is always a worker kill: simulated time
        runs fast, and even a short run must lose a worker while it bills."""
        first = True
        while not stop.is_set():
            low, high = self.options.calm_s
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.rng.uniform(low, high))
                break
            except TimeoutError:
                pass
            await (self._kill_worker() if first and WORKER_KILL in self.options.faults else self._act(self.rng.random()))
            first = False
        await asyncio.gather(*self._restarts, return_exceptions=True)

    async def _act(self, draw: float) -> None:
        """One action by the draw; a kind left out of `options.faults` is drawn but not done, so the
        script of the others stays the same."""
        kinds = self.options.faults
        if draw < 0.15:
            if WORKER_KILL in kinds:
                await self._kill_worker()
        elif draw < 0.60:
            if GATEWAY in kinds:
                await asyncio.to_thread(self._gateway_fault)
        elif draw < 0.75:
            if DB_CUT in kinds:
                await asyncio.to_thread(self._cut_database)
        else:
            member = self.rng.choice(self.members)
            hard = self.rng.random() < 0.15
            reason = self.rng.choice(HARD_REASONS if hard else SOFT_REASONS)
            await asyncio.to_thread(self._decline, member, reason, 1 if hard else self.rng.choice((1, 1, 2)))

    async def _kill_worker(self) -> None:
        live = self.pool.live
        if not live:
            return
        victim = self.rng.choice(live)
        delay = self.rng.uniform(0.0, 2.0)
        await asyncio.to_thread(self.pool.kill, victim)
        self.faults["worker_kill"] += 1
        self._restarts.append(asyncio.create_task(self.start_worker(delay)))

    async def start_worker(self, delay_s: float = 0.0) -> None:
        """A worker in place of a lost one after `delay_s`, started again until it stays up: one
        started while Temporal restarts exits at once."""
        self._starting += 1
        try:
            await asyncio.sleep(delay_s)
            for _ in range(60):
                try:
                    await asyncio.to_thread(self.pool.start, 1)
                    return
                except RuntimeError:
                    await asyncio.sleep(1.0)
        finally:
            self._starting -= 1

    async def keep_workers(self, stop: asyncio.Event) -> None:
        """Keep `options.workers` workers: replace one that died on its own (not killed by the
        script), e.g. when Temporal was away too long for it; the run tests the engine, not its
        supervisor."""
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=2.0)
                return
            except TimeoutError:
                pass
            missing = self.options.workers - len(self.pool.live) - self._starting
            for _ in range(max(0, missing)):
                self.faults["worker_died"] += 1
                self._restarts.append(asyncio.create_task(self.start_worker()))

    def _gateway_fault(self) -> None:
        endpoint = self.rng.choice(("tokenizedPayment", "tokenizedPayment", "lookup"))
        kinds = ("500", "429", "slow", "lost") if endpoint == "tokenizedPayment" else ("500", "429", "slow")
        kind = self.rng.choice(kinds)
        count = self.rng.choice((1, 1, 2))
        delay = round(self.rng.uniform(2.0, 7.0), 1) if kind == "slow" else None
        self.control.inject_fault(endpoint, kind, count=count, delay_s=delay)
        self.faults[f"{endpoint}:{kind}"] += count

    def _cut_database(self) -> None:
        """Terminate every server process of the billing database (the workers' pooled connections);
        nothing to cut while the server itself is stopped."""
        name = self.options.database
        try:
            with psycopg.connect(admin_url(self.database_url), autocommit=True, connect_timeout=5) as conn:
                cut = conn.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (name,)
                ).fetchone()
        except psycopg.OperationalError:
            return
        self.faults["db_cut"] += 1
        self.faults["db_connections_cut"] += int(cut[0]) if cut else 0


def start_dates(rng: random.Random, count: int) -> list[Any]:
    """Anchors spread over the coming four weeks (month ends included), from local today."""
    today = local_today()
    base = pendulum.date(today.year, today.month, today.day)
    return [base.add(days=rng.randrange(0, 28)) for _ in range(count)]


def split_members(members: list[Member], options: ChaosOptions) -> tuple[list[Member], list[Member]]:
    """(the subscriptions the operations act on, the control group nobody but the cycles touches),
    drawn from the seed; without the mix, everyone is in the control group."""
    if not options.mix or len(members) < 2:
        return [], list(members)
    count = min(len(members) - 1, max(1, round(len(members) * options.mix_share)))
    chosen = set(random.Random(f"{options.seed}:members").sample(range(len(members)), count))
    return [m for i, m in enumerate(members) if i in chosen], [m for i, m in enumerate(members) if i not in chosen]


async def chaos_on(
    server_url: str,
    temporal_address: str,
    namespace: str,
    options: ChaosOptions,
    *,
    say: Any = print,
    temporal: OwnedTemporal | None = None,
    postgres: OwnedPostgres | None = None,
) -> dict[str, Any]:
    """Run the chaos on an already running PostgreSQL server and a time-skipping Temporal dev server.

    `temporal` / `postgres`: the servers when this run started them (it may then restart them);
    without them those fault kinds are skipped and reported so."""
    began = time.monotonic()
    url = fresh_database(server_url, options.database)
    engine = get_engine(url)
    client = await Client.connect(temporal_address, namespace=namespace, data_converter=data_converter, runtime=_quiet_runtime())
    skipper = TimeSkipper(client)
    tag = f"c{uuid.uuid4().hex[:6]}"
    queue = f"billing-chaos-{tag}"
    devices = {SANDBOX_OID: list(DEVICES)} if options.mix else None
    # A SIGKILLed worker leaves requests half-sent; the sandbox would log each as an ASGI error.
    with SandboxServer(oids={SANDBOX_OID: SANDBOX_TOKEN}, devices=devices, log_level="critical") as sandbox, SandboxControl(sandbox.root_url) as control:
        location_id, plan_id = seed_clinic(engine, tag, term_months=options.months)
        rng = random.Random(options.seed)
        members = await enroll_members(
            engine, sandbox.base_url, tag, location_id=location_id, plan_id=plan_id, start_dates=start_dates(rng, options.subscriptions)
        )
        mixed, untouched = split_members(members, options)
        gateways = GatewayDirectory(sandbox.base_url, {SANDBOX_OID: SANDBOX_TOKEN}, timeout=5.0)
        mix = await _operation_mix(MixSite(engine, client, gateways, control, queue, location_id, (plan_id,), {}), sandbox.base_url, mixed, options.seed)
        pool = WorkerPool(WorkerSpec(url, temporal_address, queue, sandbox.base_url, namespace))
        chaos = Chaos(options, pool, control, url, members)
        servers = ServerFaults(options.seed, options.faults, temporal, postgres)
        chaos.initial_declines()
        chaos.opening_faults()
        say(
            f"chaos: {options.subscriptions} subscriptions x {options.months} months on {options.workers} workers, seed {options.seed}"
            + (f", {len(mixed)} with the operation mix" if mixed else "")
        )
        pool.start(options.workers)
        stop = asyncio.Event()
        background: list[asyncio.Task[Any]] = [asyncio.create_task(chaos.run(stop)), asyncio.create_task(chaos.keep_workers(stop))]
        janitor: dict[str, Any] = {}
        try:
            await start_workflows(skipper.client, members, task_queue=queue)
            background.append(asyncio.create_task(servers.run(stop)))
            if mix is not None:
                background.append(asyncio.create_task(mix.run(stop)))
            statuses, given_up = await _endings(client, members, queue, options.timeout_s, ended=mix.ended if mix is not None else set(), say=say)
        finally:
            stop.set()
            try:
                await asyncio.gather(*background)
                janitor = await _janitor_sweep(client, queue)
            finally:
                pool.stop()
                unfired = sum(int(fault["remaining"]) for fault in control.faults())
                control.clear_faults()
                await gateways.aclose()
        say("all subscriptions ended; checking the books against the gateway and the histories ...")
        rows = control.transactions()
        cancels = mix.report.cancels if mix is not None else {}
        cycles = check_cycles(engine, _rows_of(engine, rows, untouched), [Subscriber(m.subscription_id, m.start_date) for m in untouched], _terms(options))
        money = check_money(engine, rows, cancels)
        workflows = await check_workflows(client, engine, queue, statuses, given_up, cancelled=set(cancels))
        # Its workers are gone: a run left open (counted above as a problem) would otherwise wait in
        # the store, and on a shared time-skipping server its next task would stop time for everyone.
        await terminate_running(client, queue, reason="chaos run over")
    engine.dispose()
    chaos.faults.update(servers.done)
    report = mix.report if mix is not None else None
    return _summary(
        options, began, chaos.faults, unfired, servers, cycles, money, workflows, report, janitor, statuses, mixed=len(mixed), control=len(untouched)
    )


async def _operation_mix(site: MixSite, gravity_url: str, mixed: list[Member], seed: int) -> OperationMix | None:
    """The front desk for `mixed` (none: no mix), with what its operations need: a second plan to
    change to and a second card per client (`site` comes with the first plan only)."""
    if not mixed:
        return None
    location_id, plan_id = site.location_id, site.plan_ids[0]
    second = seed_second_plan(site.engine, location_id, plan_id, price_cents=SECOND_PLAN_PRICE_CENTS)
    cards = await save_spare_cards(site.engine, gravity_url, mixed)
    return OperationMix(replace(site, plan_ids=(plan_id, second), spare_cards=cards), mixed, seed=seed)


def _terms(options: ChaosOptions) -> Terms:
    """The plan and calendar the exact checks replay (the clinic `seed_clinic` sets up)."""
    return Terms(
        months=options.months,
        price_cents=PRICE_CENTS,
        retry_offsets_days=tuple(DEFAULT_SCHEDULE.retry_offsets_days),
        timezone=TIMEZONE,
        charge_at=wall(9, 0),
    )


def _quiet_runtime() -> Runtime:
    """The driver's Temporal runtime, logging errors only: while the server restarts, the core's
    retry warnings would go to stdout, into the run's JSON."""
    return Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))))


def _rows_of(engine: Engine, rows: list[dict[str, Any]], members: list[Member]) -> list[dict[str, Any]]:
    """The gateway rows of these members' invoices (the control group's, for the exact checks)."""
    ids = [m.subscription_id for m in members]
    with Session(engine) as session:
        invoices = set(session.exec(select(Invoice.id).where(col(Invoice.subscription_id).in_(ids))))
    return [row for row in rows if str(row.get("reference") or "") in invoices]


async def _janitor_sweep(client: Client, queue: str) -> dict[str, Any]:
    """The money janitor once more, for everything still pending (in production it runs every
    few minutes): what it finds was left behind by a collector that gave up or died."""
    report = await client.execute_workflow(
        MoneyJanitorWorkflow.run,
        JanitorInput(older_than_s=0),
        id=f"chaos-janitor-{uuid.uuid4().hex[:8]}",
        task_queue=queue,
        execution_timeout=timedelta(minutes=5),
    )
    return dict(report.__dict__)


def _summary(
    options: ChaosOptions,
    began: float,
    faults: Counter[str],
    unfired: int,
    servers: ServerFaults,
    cycles: Verdict,
    money: MoneyVerdict,
    workflows: WorkflowVerdict,
    mix: MixReport | None,
    janitor: dict[str, Any],
    statuses: dict[str, str],
    *,
    mixed: int,
    control: int,
) -> dict[str, Any]:
    """The run's JSON: the verdict first, then what happened."""
    unfinished = mix.unfinished if mix is not None else 0
    stuck = mix.updates_stuck if mix is not None else 0
    outage = servers.done[POSTGRES_STOP] > 0  # explains activities that got through after many attempts
    problems = cycles.problems + money.problems + workflows.problems + ([] if outage else workflows.many_attempts)
    problems += [f"{unfinished} operation(s) never finished"] if unfinished else []
    problems += [f"{stuck} Update(s) still running after {UPDATE_GIVE_UP_S:.0f} s"] if stuck else []
    not_faults = ("decline", "db_connections_cut", "worker_died")
    summary: dict[str, Any] = {
        "subscriptions": options.subscriptions,
        "months": options.months,
        "workers": options.workers,
        "seed": options.seed,
        "mix": options.mix,
        "mixed_subscriptions": mixed,
        "control_subscriptions": control,
        "double_charges": cycles.double_charges + money.duplicate_sales + money.overcharged_invoices,
        "missed_cycles": cycles.missed_cycles,
        "duplicated_cycles": cycles.duplicated_cycles,
        "dunning_violations": cycles.dunning_violations,
        "ledger_balanced": money.ledger_balanced,
        "reconciled_with_gateway": money.reconciled_with_gateway,
        "money": money.counts(),
        "workflows": workflows.counts(),
        "worker_kills": faults.get(WORKER_KILL, 0),
        # Armed at the gateway or done to a server, less what the gateway never got to fire.
        "faults_injected": sum(v for k, v in faults.items() if not k.startswith(not_faults) and k != WORKER_KILL) - unfired,
        "faults_unfired": unfired,
        "faults_by_kind": dict(sorted(faults.items())),
        "faults_skipped": dict(sorted(servers.skipped.items())),
        "server_down_seconds": dict(sorted(servers.down_s.items())),
        "janitor": janitor,
        "cycles_expected": cycles.cycles_expected,
        "cycles_suspended": cycles.cycles_suspended,
        "cycles_paid": cycles.cycles_paid,
        "declines_at_gateway": cycles.declines,
        "suspended_subscriptions": cycles.suspended,
        "final_statuses": dict(Counter(statuses.values())),
        "wall_seconds": round(time.monotonic() - began, 1),
        "ok": cycles.cycles_ok and money.ok and workflows.ok(outage_explains_attempts=outage) and unfinished == 0 and stuck == 0,
        "problems": problems[:30],
        # Activities that got through after more than 20 attempts while a PostgreSQL stop explains them.
        "explained_by_outage": workflows.many_attempts[:10] if outage else [],
    }
    if mix is not None:
        summary["operations"] = mix.operations()
        summary["operation_errors"] = mix.errors[:10]
        summary["refusal_reasons"] = mix.refusal_reasons()
        summary["error_reasons"] = mix.error_reasons()
        summary["device_actions"] = dict(sorted(mix.device_actions.items()))
        summary["declines_armed"] = mix.declines_armed
        summary["operations_unfinished"] = unfinished
        summary["updates_stuck"] = mix.updates_stuck
        summary["updates_slow"] = mix.updates_slow
    return summary


async def _endings(
    client: Client, members: list[Member], queue: str, timeout_s: float, *, ended: set[str], say: Any, every_s: float = 5.0
) -> tuple[dict[str, str], dict[str, str]]:
    """(each subscription's final status as its workflow returned it, why the run stopped waiting
    for the others); `ended` learns each ending as it comes. Each subscription is in one of the two.

    Endings are read from the visibility store every few seconds rather than by a long poll per
    workflow: a short query survives the Temporal restarts the run makes. A workflow whose pending
    activity stays past MAX_ATTEMPTS attempts for STUCK_GRACE_S is stuck: waiting for it would only
    hold the verdict back, so the run waits for the rest."""
    handles = {m.subscription_id: client.get_workflow_handle(subscription_workflow_id(m.subscription_id)) for m in members}
    statuses: dict[str, str] = {}
    given_up: dict[str, str] = {}
    stuck_since: dict[str, float] = {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    next_look = loop.time() + STUCK_LOOK_S
    while len(statuses) + len(given_up) < len(members):
        await asyncio.sleep(every_s)
        statuses.update(await _closed_subscriptions(client, queue, exclude={**statuses, **given_up}))
        ended.update(statuses)
        waiting = [sid for sid in handles if sid not in statuses and sid not in given_up]
        if loop.time() >= next_look:
            next_look = loop.time() + STUCK_LOOK_S
            stuck: dict[str, str] = await _patiently(functools.partial(stuck_workflows, [handles[sid] for sid in waiting]), {})
            stuck_since = {sid: stuck_since.get(sid, loop.time()) for sid in stuck}
            given_up.update({sid: why for sid, why in stuck.items() if loop.time() - stuck_since[sid] >= STUCK_GRACE_S})
            say(f"  {len(statuses)} of {len(members)} subscriptions ended" + (f", {len(given_up)} stuck" if given_up else ""))
        if loop.time() > deadline:
            given_up.update(dict.fromkeys(waiting, "still running at the run's timeout"))
    return statuses, given_up


async def _closed_subscriptions(client: Client, queue: str, *, exclude: Mapping[str, str]) -> dict[str, str]:
    """Subscription id -> final status of the subscription workflows on `queue` that closed (not
    counting runs that continued as new) and are not in `exclude`: the result of a completed one,
    the execution status of one that failed or was terminated."""
    query = f"TaskQueue = '{queue}' AND WorkflowType = 'Subscription' AND ExecutionStatus != 'Running' AND ExecutionStatus != 'ContinuedAsNew'"

    async def read() -> dict[str, str]:
        found: dict[str, str] = {}
        async for execution in client.list_workflows(query):
            subscription_id = execution.id.removeprefix("subscription:")
            if subscription_id in exclude or subscription_id in found:
                continue
            if execution.status == WorkflowExecutionStatus.COMPLETED:
                found[subscription_id] = str(await client.get_workflow_handle(execution.id, run_id=execution.run_id).result())
            elif execution.status is not None:
                found[subscription_id] = execution.status.name.lower()
        return found

    return await _patiently(read, {})


async def _patiently(read: Callable[[], Awaitable[T]], otherwise: T) -> T:
    """`read()`, or `otherwise` while Temporal is away (the next look tries again)."""
    try:
        return await read()
    except RPCError:
        return otherwise
