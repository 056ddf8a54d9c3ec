"""The counter walk a newcomer does by hand: tokenize a test card, create a counter invoice, list the
location's terminals, send the invoice to one, tap it on the sandbox, refund part; amounts in dollars."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session
from temporalio.testing import WorkflowEnvironment

from api.routes.cards import CardIn
from gravity.sandbox.control import SandboxControl
from models.billing import Invoice, Payment
from tests.cli.conftest import Billing, eventually, refused
from tests.payments.helpers import wait_for_state
from tests.support.clinic import make_clinic

DEVICE = "counter-1"


def payment(engine: Engine, payment_id: str) -> Payment | None:
    with Session(engine) as session:
        return session.get(Payment, payment_id)


async def test_counter_invoice_terminal_tap_and_refund_in_dollars(
    billing: Billing, db: Engine, sandbox: SandboxControl, temporal_env: WorkflowEnvironment
) -> None:
    clinic = make_clinic(db)
    saved = (await billing("sandbox", "tokenize", "--card", "5555555555554444", "--exp", "1230")).json()
    assert saved["gravity_ref"] and saved["brand"] == "MC" and saved["masked_number"].endswith("4444")
    CardIn.model_validate(saved)  # the README posts it as it is to /clients/{id}/cards

    refused(await billing("counter-invoice", clinic.client_id, "--line", "Exam=85.001"), "--line")
    refused(await billing("counter-invoice", "cli_nope", "--line", "Exam=85.00"), "unknown client cli_nope")
    invoice = (await billing("counter-invoice", clinic.client_id, "--line", "Sick visit exam=85.00", "--line", "Ear cytology=$35", "--json")).json()
    assert invoice["total_cents"] == 12_000
    with Session(db) as session:
        row = session.get(Invoice, invoice["invoice_id"])
        assert row is not None and row.total_cents == 12_000

    listed = (await billing("terminals", clinic.location_id, "--json")).json()
    assert {t["device_name"]: (t["at_gravity"], t["online"], t["busy"]) for t in listed["terminals"]}[DEVICE] == (True, True, False)

    refused(await billing("terminal-pay", invoice["invoice_id"], "--device", DEVICE, "--amount", "12.345"), "--amount")
    refused(await billing("sandbox", "tap", DEVICE), DEVICE, "terminal-pay")  # nothing to pay yet
    started = (await billing("terminal-pay", invoice["invoice_id"], "--device", DEVICE, "--amount", "120.00", "--json")).json()
    await wait_for_state(temporal_env.client.get_workflow_handle(started["workflow_id"]), "waiting_at_counter")
    tapped = await billing("sandbox", "tap", DEVICE, "--card", "4111111111111111")
    assert tapped.exit_code == 0, tapped
    await eventually(lambda: getattr(payment(db, started["payment_id"]), "status", None) == "approved", timeout=30)

    refund = (await billing("refund", started["payment_id"], "--amount", "20.00", "--reason", "goodwill", "--json")).json()
    assert refund["amount_cents"] == 2_000


async def test_free_text_refuses_a_card_number(billing: Billing, db: Engine) -> None:
    clinic = make_clinic(db)
    message = refused(await billing("counter-invoice", clinic.client_id, "--line", "Card 4111 1111 1111 1111=85.00"), "--line", "looks like a card number")
    assert "4111" not in message
    refused(await billing("cancel", "sub_nope", "--reason", "pan:4111111111111111"), "--reason", "looks like a card number")
    with Session(db) as session:
        assert session.query(Invoice).count() == 0
