"""Shortcuts of the counter-payment scenarios."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from foundation.contracts import DepositOutcome, RefundResult, TerminalTiming, TerminalView
from foundation.settings import SANDBOX_OID
from gravity.directory import GatewayDirectory
from gravity.sandbox.control import SandboxControl
from models.billing import Invoice, Payment, Refund
from operations.payments import (
    CounterLine,
    TerminalRequest,
    create_counter_invoice_for,
    refund_deposit,
    refund_payment,
    start_terminal_payment,
    take_card_deposit,
)
from operations.reconciliation import reconcile
from tests.support.clinic import Clinic
from workflows.terminal_payment import TerminalPaymentWorkflow

ROOT = Path(__file__).resolve().parents[2]
TASK_QUEUE = "billing-tests"
DEVICE = "counter-1"
OID = SANDBOX_OID
# Few, long timers: every timer costs about a second of real time when it is skipped.
COARSE = TerminalTiming(poll_every_s=60, counter_timeout_s=180, background_every_s=600, background_for_s=1800)
# Real time (no skipping): poll often so "postback lost" resolves in about a second.
QUICK = TerminalTiming(poll_every_s=1, counter_timeout_s=180, background_every_s=30, background_for_s=1800)


def counter_invoice(engine: Engine, clinic: Clinic, cents: int = 10_000) -> str:
    return create_counter_invoice_for(engine, client_id=clinic.client_id, location_id=clinic.location_id, lines=[CounterLine("Dental cleaning", cents)])


async def start_at_counter(
    env: WorkflowEnvironment,
    engine: Engine,
    gateways: GatewayDirectory,
    clinic: Clinic,
    *,
    timing: TerminalTiming = QUICK,
    skipping: bool = False,
    **fields: Any,
) -> WorkflowHandle:
    """Start a terminal payment; without `skipping` its timers run in real time."""
    request = TerminalRequest(location_id=clinic.location_id, device_name=fields.pop("device_name", DEVICE), **fields)
    if skipping:
        return await start_terminal_payment(env.client, engine, gateways, request, task_queue=TASK_QUEUE, timing=timing)
    with env.with_time_skipping_disabled():
        return await start_terminal_payment(env.client, engine, gateways, request, task_queue=TASK_QUEUE, timing=timing)


async def state_of(handle: WorkflowHandle) -> TerminalView:
    return await handle.query(TerminalPaymentWorkflow.status)


async def wait_for_state(handle: WorkflowHandle, *states: str, timeout: float = 30.0) -> TerminalView:
    deadline = time.monotonic() + timeout
    while True:
        view = await state_of(handle)
        if view.state in states:
            return view
        if time.monotonic() > deadline:
            raise AssertionError(f"{handle.id} is {view.state}, not {states}")
        await asyncio.sleep(0.1)


async def eventually(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await asyncio.to_thread(check)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.1)


def invoice(engine: Engine, invoice_id: str) -> Invoice:
    with Session(engine) as session:
        row = session.get(Invoice, invoice_id)
        assert row is not None
        return row


def payment(engine: Engine, payment_id: str) -> Payment:
    with Session(engine) as session:
        row = session.get(Payment, payment_id)
        assert row is not None
        return row


def payments_of(engine: Engine, invoice_id: str) -> list[Payment]:
    with Session(engine) as session:
        return list(session.exec(select(Payment).where(Payment.invoice_id == invoice_id).order_by(col(Payment.created_at))))


def refunds_of(engine: Engine, payment_id: str) -> list[Refund]:
    with Session(engine) as session:
        return list(session.exec(select(Refund).where(Refund.payment_id == payment_id).order_by(col(Refund.created_at))))


def gateway_row(sandbox: SandboxControl, external_transaction_id: str) -> dict[str, Any]:
    return next(r for r in sandbox.transactions() if r["external_transaction_id"] == external_transaction_id)


def assert_books_match(engine: Engine, sandbox: SandboxControl) -> None:
    """`assert_books_match_gateway`, counting the gateway's partial approvals as approved sales.

    operations/reconciliation.py reads only status "approved" (the sandbox marks a partial approval
    "partial"), so a partially approved terminal sale would show as a false mismatch there.
    """
    rows: list[Mapping[str, Any]] = [dict(r, status="approved") if r["status"] == "partial" else r for r in sandbox.transactions()]
    report = reconcile(engine, rows)
    assert report.ledger_balanced
    assert report.double_charges == 0
    assert report.mismatches == []


def assert_clearing_matches_gateway(engine: Engine, sandbox: SandboxControl) -> None:
    """The gateway_clearing account holds exactly the money Gravity holds for us, to the cent."""
    from books.ledger import account_balances

    held = 0
    for row in sandbox.transactions():
        if row["status"] not in ("approved", "partial"):
            continue
        if row["transaction_type"] == "CreditSale":
            held += int(row["approved_cents"])
        elif row["transaction_type"] == "Void":
            held -= int(row["approved_cents"])
        elif row["transaction_type"] == "CreditReturn":
            held -= int(row["amount_cents"] or 0)
    with Session(engine) as session:
        assert account_balances(session).get("gateway_clearing", 0) == held


async def pay_at_counter(
    env: WorkflowEnvironment,
    engine: Engine,
    gateways: GatewayDirectory,
    sandbox: SandboxControl,
    clinic: Clinic,
    invoice_id: str,
    amount_cents: int | None = None,
    device: str = DEVICE,
) -> str:
    """A terminal payment the customer approves at once; returns the payment id."""
    handle = await start_at_counter(env, engine, gateways, clinic, invoice_id=invoice_id, amount_cents=amount_cents, device_name=device)
    await wait_for_state(handle, "waiting_at_counter")
    sandbox.present_card(OID, device)
    outcome = await handle.result()
    assert outcome.status == "approved", outcome
    return outcome.payment_id


async def refund(
    env: WorkflowEnvironment,
    engine: Engine,
    payment_id: str,
    *,
    request_id: str,
    amount_cents: int | None = None,
    reason: str = "",
) -> RefundResult:
    """`refund_payment` through its workflow on the session's worker, waited for to the end."""
    movement = await refund_payment(
        env.client, engine, payment_id=payment_id, amount_cents=amount_cents, request_id=request_id, reason=reason, task_queue=TASK_QUEUE
    )
    assert movement.result is not None
    return movement.result


async def deposit_refund(env: WorkflowEnvironment, engine: Engine, deposit_id: str, *, request_id: str) -> RefundResult:
    """`refund_deposit` through its workflow on the session's worker, waited for to the end."""
    movement = await refund_deposit(env.client, engine, deposit_id=deposit_id, request_id=request_id, task_queue=TASK_QUEUE)
    assert movement.result is not None
    return movement.result


async def card_deposit(env: WorkflowEnvironment, engine: Engine, *, client_id: str, card_id: str, amount_cents: int, request_id: str) -> DepositOutcome:
    """`take_card_deposit` through its workflow on the session's worker, waited for to the end."""
    movement = await take_card_deposit(
        env.client, engine, client_id=client_id, card_id=card_id, amount_cents=amount_cents, request_id=request_id, task_queue=TASK_QUEUE
    )
    assert movement.result is not None
    return movement.result


def spawn_worker(address: str, database_url: str, base_url: str, task_queue: str) -> subprocess.Popen[bytes]:
    """A worker in its own process (tests.payments.saga_worker), for tests that SIGKILL one mid-way."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.payments.saga_worker", address, database_url, base_url, task_queue],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=None,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == b"worker ready"
    return process


def stop_worker(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL (no graceful shutdown: in-flight activities die with it) and reap."""
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    process.wait(10)
