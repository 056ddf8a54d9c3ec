"""A terminal payment is refused, naming the device, when the location never registered the device,
even though Gravity knows it (another clinic's counter under the same merchant): by the CLI (the API twin: tests/api/test_terminal_registration.py)."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session, func, select

from models.billing import Payment
from operations.payments import CounterLine, create_counter_invoice_for
from tests.cli.conftest import Billing, refused
from tests.support.clinic import make_clinic

DEVICE = "counter-1"  # known to the sandbox


def payments(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(Payment)).one())


async def test_terminal_pay_refuses_a_device_the_location_never_registered(billing: Billing, db: Engine) -> None:
    clinic = make_clinic(db, terminals=())
    invoice = create_counter_invoice_for(db, client_id=clinic.client_id, location_id=clinic.location_id, lines=[CounterLine("Exam", 8_500)])
    said = refused(await billing("terminal-pay", invoice, "--device", DEVICE), DEVICE, "never registered")
    assert len(said.splitlines()) == 1
    assert payments(db) == 0
