"""Every workflow and activity class the engine runs, listed once.

Why one list: an activity's name is on the wire in every recorded history, and it used to be kept in
step by hand in four places (the workflow's call, the `@activity.defn`, the worker's list and the
audit trail's type table). Workflows now reference the methods, and the worker (`worker.build_worker`)
and the audit trail (`operations.history`) both read this module, so a class added here is run and
decoded alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine
from temporalio import activity, workflow

from activities.invoice_compensation import InvoiceCompensationActivities
from activities.janitor import JanitorActivities
from activities.money_movements import MoneyMovementActivities
from activities.subscription_commands import SubscriptionCommandActivities
from activities.subscriptions import SubscriptionActivities
from activities.terminal import TerminalActivities
from gravity.directory import GatewayDirectory
from workflows.card_deposit import CardDepositWorkflow
from workflows.charging_enabled import ChargingEnabledWorkflow
from workflows.invoice_cancellation import InvoiceCancellationWorkflow
from workflows.money_janitor import DailyReconciliationWorkflow, MoneyJanitorWorkflow
from workflows.refund import RefundWorkflow
from workflows.subscription import SubscriptionWorkflow
from workflows.terminal_payment import TerminalPaymentWorkflow

WORKFLOWS: tuple[type, ...] = (
    SubscriptionWorkflow,
    TerminalPaymentWorkflow,
    InvoiceCancellationWorkflow,
    RefundWorkflow,
    CardDepositWorkflow,
    MoneyJanitorWorkflow,
    DailyReconciliationWorkflow,
    ChargingEnabledWorkflow,
)
# Each is built once per worker from its database engine and Gravity clients: `cls(engine, gateways)`.
ACTIVITY_CLASSES: tuple[type, ...] = (
    SubscriptionActivities,
    SubscriptionCommandActivities,
    TerminalActivities,
    InvoiceCompensationActivities,
    MoneyMovementActivities,
    JanitorActivities,
)


def activity_methods(cls: type) -> list[str]:
    """The attribute names of a class's `@activity.defn` methods."""
    return [name for name in dir(cls) if _definition(getattr(cls, name)) is not None]


def bound_activities(engine: Engine, gateways: GatewayDirectory) -> list[Callable[..., Any]]:
    """Every activity, bound to one instance of its class over this worker's engine and Gravity clients."""
    bound: list[Callable[..., Any]] = []
    for cls in ACTIVITY_CLASSES:
        instance = cls(engine, gateways)
        bound.extend(getattr(instance, name) for name in activity_methods(cls))
    return bound


def activity_types() -> dict[str, tuple[type | None, type | None]]:
    """Each activity's name on the wire -> (its argument's type, its result's type), as its method
    declares them; None where it takes other than one argument."""
    types: dict[str, tuple[type | None, type | None]] = {}
    for cls in ACTIVITY_CLASSES:
        for name in activity_methods(cls):
            definition = _definition(getattr(cls, name))
            assert definition is not None and definition.name is not None
            args = definition.arg_types or []
            types[definition.name] = (args[0] if len(args) == 1 else None, definition.ret_type)
    return types


def workflow_types() -> dict[str, tuple[type | None, type | None]]:
    """Each workflow's type name -> (its input's type, its result's type), as its run method declares them."""
    types: dict[str, tuple[type | None, type | None]] = {}
    for cls in WORKFLOWS:
        definition = workflow._Definition.must_from_class(cls)
        assert definition.name is not None
        args = definition.arg_types or []
        types[definition.name] = (args[0] if len(args) == 1 else None, definition.ret_type)
    return types


def _definition(member: object) -> activity._Definition | None:
    """What `@activity.defn` recorded on a method (the SDK's own reader of it), else None."""
    return activity._Definition.from_callable(member) if callable(member) else None
