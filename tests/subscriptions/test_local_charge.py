"""A cycle's charge is tried as a local activity first (patch `charge-as-local-activity`).

What the server records is checked here, not just the money: a charge that goes through costs no
activity task; a transient fault hands the same attempt to an activity task; a permanent refusal is
an incident and is not handed on. Finance's audit trail reads all three.
"""

from __future__ import annotations

import json
from datetime import date

from sqlalchemy import Engine
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from foundation.settings import SANDBOX_OID
from gravity.directory import GatewayDirectory
from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from operations.enrollment import EnrollRequest, enroll
from operations.history.markers import LOCAL_ACTIVITY_MARKER, PATCH_MARKER
from operations.history.trail import audit_trail
from tests.subscriptions.helpers import (
    approved_sales_per_reference,
    assert_one_cycle_charged_once,
    events,
    invoices,
    start,
    subscription_id_of,
)
from tests.support.cards import save_card
from tests.support.clinic import make_clinic
from worker import build_worker
from workflows.subscription import PATCH_LOCAL_CHARGE

E = EventType


async def _events(handle: WorkflowHandle) -> list[HistoryEvent]:
    return list((await handle.fetch_history()).events)


def _local_tries(history: list[HistoryEvent], activity_type: str) -> list[HistoryEvent]:
    """The markers of the local activity `activity_type` (one per try that ended)."""
    found = []
    for event in history:
        attrs = event.marker_recorded_event_attributes
        if event.event_type != E.EVENT_TYPE_MARKER_RECORDED or attrs.marker_name != LOCAL_ACTIVITY_MARKER:
            continue
        if json.loads(attrs.details["data"].payloads[0].data)["activity_type"] == activity_type:
            found.append(event)
    return found


def _scheduled(history: list[HistoryEvent], activity_type: str) -> list[HistoryEvent]:
    return [
        e
        for e in history
        if e.event_type == E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED and e.activity_task_scheduled_event_attributes.activity_type.name == activity_type
    ]


def _patches(history: list[HistoryEvent]) -> list[str]:
    return [
        json.loads(e.marker_recorded_event_attributes.details["patch-data"].payloads[0].data)["id"]
        for e in history
        if e.event_type == E.EVENT_TYPE_MARKER_RECORDED and e.marker_recorded_event_attributes.marker_name == PATCH_MARKER
    ]


async def test_a_cycle_that_goes_through_costs_no_activity_task(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    clinic = make_clinic(db, term_months=3, auto_renew=False)
    await save_card(db, sandbox_server, clinic)
    handle = await start(temporal_env, db, clinic, date(2027, 4, 1))
    assert await handle.result() == "ended"

    history = await _events(handle)
    assert len(_local_tries(history, "charge_cycle")) == 3
    assert _scheduled(history, "charge_cycle") == []
    # One versioning marker per run: the local charge implies a year-long run, so the older patch's
    # marker is not recorded beside it.
    assert _patches(history) == [PATCH_LOCAL_CHARGE]
    # Each cycle is woken by its timer and billed in that one workflow task (the first also starts).
    assert sum(1 for e in history if e.event_type == E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED) <= 3 + 2

    sub_id = subscription_id_of(handle)
    billed = invoices(db, sub_id)
    assert [i.status for i in billed] == ["paid"] * 3
    assert approved_sales_per_reference(sandbox) == {i.id: 1 for i in billed}
    trail = (await audit_trail(temporal_env.client, db, "subscription", sub_id)).entries
    requested = [(e.attempt, e.trigger) for e in trail if e.kind == "charge_requested"]
    results = [(e.invoice_id, e.status, e.amount_cents) for e in trail if e.kind == "charge_result"]
    assert requested == [(1, "cycle due")] * 3
    assert results == [(i.id, "paid", 4_500) for i in billed]


async def test_a_transient_fault_hands_the_same_attempt_to_an_activity_task(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment, billing_worker: Worker
) -> None:
    clinic = make_clinic(db, term_months=1, auto_renew=False)
    await save_card(db, sandbox_server, clinic)
    sandbox.inject_fault("tokenizedPayment", "500", count=1)
    handle = await start(temporal_env, db, clinic, date(2027, 4, 1))
    assert await handle.result() == "ended"

    history = await _events(handle)
    (local_try,) = _local_tries(history, "charge_cycle")
    assert "HTTP 500" in local_try.marker_recorded_event_attributes.failure.message
    (handed_on,) = _scheduled(history, "charge_cycle")
    assert handed_on.event_id > local_try.event_id

    sub_id = subscription_id_of(handle)
    assert_one_cycle_charged_once(db, sandbox, sub_id)
    trail = (await audit_trail(temporal_env.client, db, "subscription", sub_id)).entries
    temporal = [(e.kind, e.attempt) for e in trail if e.source == "temporal" and e.kind.startswith(("charge_", "activity_failed"))]
    assert temporal == [("activity_failed", None), ("charge_requested", 1), ("charge_result", 1)]


async def test_a_refused_charge_is_an_incident_and_is_not_handed_on(
    db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment
) -> None:
    clinic = make_clinic(db, term_months=1, auto_renew=False)
    await save_card(db, sandbox_server, clinic)
    queue = "refused-charges"
    # Gravity refuses this worker's credentials (401): a permanent refusal, for people to mend.
    gateways = GatewayDirectory(sandbox_server.base_url, {SANDBOX_OID: "not-the-merchant-token"}, timeout=5.0)
    async with build_worker(temporal_env.client, db, gateways, task_queue=queue):
        enrollment = await enroll(
            temporal_env.client,
            db,
            EnrollRequest(clinic.client_id, clinic.pet_id, clinic.plan_id, clinic.location_id, date(2027, 4, 1)),
            task_queue=queue,
        )
        handle = temporal_env.client.get_workflow_handle(enrollment.workflow_id)
        assert await handle.result() == "ended"
        history = await _events(handle)
    await gateways.aclose()

    (local_try,) = _local_tries(history, "charge_cycle")
    assert "HTTP 401" in local_try.marker_recorded_event_attributes.failure.message
    assert _scheduled(history, "charge_cycle") == []
    assert "payment.incident" in events(db, enrollment.subscription_id)
    invoice_id = invoices(db, enrollment.subscription_id)[0].id
    assert [t for t in sandbox.transactions() if t["transaction_type"] == "CreditSale" and t["reference"] == invoice_id] == []
