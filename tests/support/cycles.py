"""A subscription's first cycle charged through the charge activity alone (no workflow): books
with a paid cycle in them, for tests of what reads the books."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine
from sqlmodel import Session
from temporalio.testing import ActivityEnvironment

from activities.subscriptions import SubscriptionActivities
from bench.charge_cost import first_attempt
from foundation.ids import invoice_id_for_cycle
from gravity.directory import GatewayDirectory
from gravity.sandbox.server import SandboxServer
from models.billing import Invoice
from operations.enrollment import EnrollRequest, record_enrollment
from tests.support.cards import save_card
from tests.support.clinic import Clinic


async def paid_first_cycle(db: Engine, gateways: GatewayDirectory, server: SandboxServer, clinic: Clinic, start_date: date) -> tuple[str, str]:
    """The first cycle charged and paid; returns (subscription id, invoice id)."""
    card_id, _ = await save_card(db, server, clinic)
    workflow_input, _ = record_enrollment(db, EnrollRequest(clinic.client_id, clinic.pet_id, clinic.plan_id, clinic.location_id, start_date, card_id=card_id))
    request = first_attempt(workflow_input)
    await ActivityEnvironment().run(SubscriptionActivities(db, gateways).charge_cycle, request)
    subscription_id = workflow_input.setup.subscription_id
    invoice_id = invoice_id_for_cycle(subscription_id, request.period_start)
    with Session(db) as session:
        invoice = session.get(Invoice, invoice_id)
        assert invoice is not None and invoice.status == "paid", invoice
    return subscription_id, invoice_id
