"""Commands on running subscriptions, shared by the HTTP API, the CLI and the demo.

Each one is a validated Temporal Update: a refused command raises `CommandRefused` with the
workflow's reason and changes nothing.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.service import RPCError

from foundation.contracts import CancelRequest, CommandResult, PlanChange, SubscriptionView
from foundation.ids import charging_enabled_workflow_id, subscription_workflow_id
from foundation.scopes import Actor
from models.clinic import Location
from models.db import session_scope
from models.subscriptions import Subscription, live_subscription_ids
from operations.audit import Subject, record
from workflows.charging_enabled import ChargingEnabledWorkflow
from workflows.subscription import SubscriptionWorkflow


class CommandRefused(ValueError):
    """The subscription refused the command; the message says why. Nothing changed."""


class UnknownSubscription(LookupError):
    pass


@dataclass(frozen=True)
class Audit:
    """Where and as whom a command is recorded in the audit trail (`operations.audit`)."""

    engine: Engine
    actor: Actor
    request_key: str | None = None  # the caller's Idempotency-Key, when there is one

    def update_id(self, update_name: str) -> str | None:
        """The Update's id for a request with a key: the same request asked again (its answer was
        lost, its lease ran out) joins the first Update; another token's same key is another request."""
        return None if self.request_key is None else f"{update_name}:{self.actor.token}:{self.request_key}"


async def _update(client: Client, subscription_id: str, update: Any, *args: Any, update_id: str | None = None, audit: Audit | None = None) -> CommandResult:
    """Send the Update; with `update_id`, a repeat after a lost answer (an RPC timeout, a restart)
    attaches to the same Update instead of asking a second time. An accepted command is recorded
    with its actor (`audit`), naming the workflow and the key."""
    handle = client.get_workflow_handle_for(SubscriptionWorkflow.run, subscription_workflow_id(subscription_id))
    if update_id is None and audit is not None:
        update_id = audit.update_id(update.__name__)
    try:
        result: CommandResult = await handle.execute_update(update, *args, id=update_id) if args else await handle.execute_update(update, id=update_id)
    except WorkflowUpdateFailedError as error:
        raise CommandRefused(_reason(error)) from None
    except RPCError as error:
        if "not found" in str(error).lower():
            raise UnknownSubscription(f"unknown subscription {subscription_id}") from None
        if "completed" in str(error).lower():
            raise CommandRefused(f"subscription {subscription_id} has finished") from None
        raise
    if audit is not None and result.accepted:
        await asyncio.to_thread(_record_command, audit, update.__name__, subscription_id, update_id, handle.id)
    return result


def _record_command(audit: Audit, name: str, subscription_id: str, update_id: str | None, workflow_id: str) -> None:
    with session_scope(audit.engine) as session:
        sub = session.get(Subscription, subscription_id)
        subject = Subject("subscription", subscription_id, sub.location_id if sub is not None else None)
        key = audit.request_key or update_id
        record(session, audit.actor, f"subscription.{name}", subject, request_key=key, workflow_id=workflow_id)


def _reason(error: BaseException) -> str:
    while error.__cause__ is not None:
        error = error.__cause__
    return str(error)


async def cancel(
    client: Client, subscription_id: str, *, mode: str = "now", reason: str = "", update_id: str | None = None, audit: Audit | None = None
) -> CommandResult:
    request = CancelRequest(mode=mode, reason=reason)
    return await _update(client, subscription_id, SubscriptionWorkflow.cancel, request, update_id=update_id, audit=audit)


async def pause(client: Client, subscription_id: str, *, update_id: str | None = None, audit: Audit | None = None) -> CommandResult:
    return await _update(client, subscription_id, SubscriptionWorkflow.pause, update_id=update_id, audit=audit)


async def resume(client: Client, subscription_id: str, *, update_id: str | None = None, audit: Audit | None = None) -> CommandResult:
    return await _update(client, subscription_id, SubscriptionWorkflow.resume, update_id=update_id, audit=audit)


async def change_card(client: Client, subscription_id: str, card_id: str, *, update_id: str | None = None, audit: Audit | None = None) -> CommandResult:
    return await _update(client, subscription_id, SubscriptionWorkflow.change_card, card_id, update_id=update_id, audit=audit)


async def change_plan(client: Client, subscription_id: str, plan_id: str, *, update_id: str | None = None, audit: Audit | None = None) -> CommandResult:
    return await _update(client, subscription_id, SubscriptionWorkflow.change_plan, PlanChange(plan_id=plan_id), update_id=update_id, audit=audit)


async def pay_now(client: Client, subscription_id: str, *, update_id: str | None = None, audit: Audit | None = None) -> CommandResult:
    return await _update(client, subscription_id, SubscriptionWorkflow.pay_now, update_id=update_id, audit=audit)


async def describe(client: Client, subscription_id: str) -> SubscriptionView:
    handle = client.get_workflow_handle_for(SubscriptionWorkflow.run, subscription_workflow_id(subscription_id))
    try:
        return await handle.query(SubscriptionWorkflow.describe)
    except RPCError as error:
        if "not found" in str(error).lower():
            raise UnknownSubscription(f"unknown subscription {subscription_id}") from None
        raise


@dataclass(frozen=True)
class RunState:
    """What Temporal's own record says of a subscription's workflow run, readable with no worker."""

    status: str  # running, completed, failed, canceled, terminated, continued_as_new, timed_out
    task_queue: str
    closed_at: datetime | None

    @property
    def open(self) -> bool:
        return self.status == "running"


async def run_state(client: Client, subscription_id: str) -> RunState:
    """The subscription's latest run, from Temporal's record: a query needs a worker, this does not."""
    handle = client.get_workflow_handle_for(SubscriptionWorkflow.run, subscription_workflow_id(subscription_id))
    try:
        described = await handle.describe()
    except RPCError as error:
        if "not found" in str(error).lower():
            raise UnknownSubscription(f"unknown subscription {subscription_id}") from None
        raise
    status = (described.status or WorkflowExecutionStatus.RUNNING).name.lower()
    return RunState(status, described.task_queue, described.close_time)


async def worker_polls(client: Client, task_queue: str) -> bool:
    """Whether any worker has lately polled `task_queue` for workflow tasks (Temporal keeps recent pollers)."""
    request = DescribeTaskQueueRequest(
        namespace=client.namespace, task_queue=TaskQueue(name=task_queue), task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW
    )
    return bool((await client.workflow_service.describe_task_queue(request)).pollers)


async def set_recurring_allowed(client: Client, engine: Engine, location_id: str, allowed: bool, *, task_queue: str) -> int:
    """Flip a location's "allow Gravity payment for recurring payment"; when it turns on, start the
    workflow that tells every live subscription there, so overdue invoices are charged now (durably:
    a request that dies half-way leaves nobody waiting). Returns how many subscriptions it tells."""
    with session_scope(engine) as session:
        location = session.get(Location, location_id)
        if location is None:
            raise LookupError(f"unknown location {location_id}")
        location.allow_recurring_gravity = allowed
        session.add(location)
        live = len(live_subscription_ids(session, location_id))
    if not allowed:
        return 0
    await client.start_workflow(
        ChargingEnabledWorkflow.run, location_id, id=charging_enabled_workflow_id(location_id, uuid.uuid4().hex[:12]), task_queue=task_queue
    )
    return live
