"""`billing terminal-pay / deposit / refund / cancel-invoice`: money moves once, refusals move none."""

from __future__ import annotations

from sqlalchemy import Engine, func
from sqlmodel import Session, select
from temporalio.testing import WorkflowEnvironment

from foundation.settings import SANDBOX_OID
from gravity.sandbox.control import SandboxControl
from gravity.sandbox.server import SandboxServer
from models.billing import Deposit, Invoice, Payment, Refund
from operations.payments import CounterLine, create_counter_invoice_for
from tests.cli.conftest import Billing, eventually, refused
from tests.payments.helpers import wait_for_state
from tests.subscriptions.helpers import assert_books_match_gateway
from tests.support.cards import save_card
from tests.support.clinic import make_clinic

DEVICE = "counter-1"


def counts(engine: Engine) -> tuple[int, ...]:
    with Session(engine) as session:
        return tuple(session.exec(select(func.count()).select_from(model)).one() for model in (Payment, Refund, Deposit))


def invoice(engine: Engine, invoice_id: str) -> Invoice:
    with Session(engine) as session:
        row = session.get(Invoice, invoice_id)
        assert row is not None
        return row


def payment(engine: Engine, payment_id: str) -> Payment | None:
    with Session(engine) as session:
        return session.get(Payment, payment_id)


async def test_terminal_payment_refund_and_invoice_cancellation(
    billing: Billing, db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer, temporal_env: WorkflowEnvironment
) -> None:
    clinic = make_clinic(db)
    invoice_id = create_counter_invoice_for(db, client_id=clinic.client_id, location_id=clinic.location_id, lines=[CounterLine("Dental cleaning", 12_000)])

    nothing = counts(db)
    refused(await billing("terminal-pay", invoice_id, "--device", "counter-9"), "unknown device counter-9")
    refused(await billing("terminal-pay", "inv_nope", "--device", DEVICE), "unknown invoice inv_nope")
    refused(await billing("terminal-pay", invoice_id, "--device", DEVICE, "--amount-cents", "0"), "--amount-cents")
    assert counts(db) == nothing
    assert sandbox.transactions() == []

    started = (await billing("terminal-pay", invoice_id, "--device", DEVICE, "--request-id", "desk-42", "--json")).json()
    payment_id = started["payment_id"]
    assert started["workflow_id"] == f"terminal-payment:{payment_id}"
    await wait_for_state(temporal_env.client.get_workflow_handle(started["workflow_id"]), "waiting_at_counter")
    # The same request id is the same payment. (Asked only once the payment row exists: before that,
    # operations.payments checks the device again and finds it busy with this very payment.)
    again = (await billing("terminal-pay", invoice_id, "--device", DEVICE, "--request-id", "desk-42", "--json")).json()
    assert again["payment_id"] == payment_id
    sandbox.present_card(SANDBOX_OID, DEVICE)
    await eventually(lambda: getattr(payment(db, payment_id), "status", None) == "approved", timeout=30)
    assert invoice(db, invoice_id).status == "paid"

    # refunds: more than is left is refused; a part is given back once
    refused(await billing("refund", payment_id, "--amount-cents", "20000"), "exceeds", "12000")
    refused(await billing("refund", "pay_nope"), "unknown payment pay_nope")
    assert counts(db) == (1, 0, 0)
    refund = (await billing("refund", payment_id, "--amount-cents", "2000", "--reason", "goodwill", "--request-id", "r-1", "--json")).json()
    assert refund["amount_cents"] == 2_000 and refund["kind"] in ("void", "refund") and refund["refund_id"]
    replay = (await billing("refund", payment_id, "--amount-cents", "2000", "--request-id", "r-1", "--json")).json()
    assert replay["refund_id"] == refund["refund_id"]
    assert getattr(payment(db, payment_id), "refunded_cents", None) == 2_000

    # cancel the invoice: the rest goes back, the invoice is void; a second cancel is refused
    cancelled = (await billing("cancel-invoice", invoice_id, "--reason", "duplicate visit", "--wait", "--json")).json()
    assert cancelled["outcome"]["status"] == "void"
    assert sum(c["amount_cents"] for c in cancelled["outcome"]["compensated"]) == 10_000
    assert invoice(db, invoice_id).status == "void"
    before = counts(db)
    refused(await billing("cancel-invoice", invoice_id), "already void")
    refused(await billing("cancel-invoice", "inv_nope"), "unknown invoice inv_nope")
    assert counts(db) == before
    assert_books_match_gateway(db, sandbox)

    # the invoice's audit trail: the terminal workflow, the saga, and the books
    trail = (await billing("history", "invoice", invoice_id, "--json")).json()
    assert {w["workflow_type"] for w in trail["workflows"]} == {"TerminalPayment", "InvoiceCancellation"}
    kinds = [e["kind"] for e in trail["entries"]]
    assert {"workflow_started", "workflow_completed", "invoice", "payment", "refund", "ledger:payment_approved", "ledger:invoice_void"} <= set(kinds)
    saga = [e for e in trail["entries"] if e["kind"] == "activity_result" and "compensate_payment" in e["summary"]]
    assert [e["amount_cents"] for e in saga] == [10_000]
    given_back = [e for e in trail["entries"] if e["kind"] in ("refund", "void") and e["source"] == "database"]
    assert sorted(e["amount_cents"] for e in given_back) == [2_000, 10_000]


async def test_card_deposit_and_its_refusals(billing: Billing, db: Engine, sandbox: SandboxControl, sandbox_server: SandboxServer) -> None:
    clinic = make_clinic(db)
    card, _ = await save_card(db, sandbox_server, clinic)
    stranger = make_clinic(db)
    strangers_card, _ = await save_card(db, sandbox_server, stranger)

    nothing, at_gravity = counts(db), len(sandbox.transactions())
    refused(await billing("deposit", clinic.client_id, "--card", card, "--amount-cents", "0"), "--amount-cents")
    refused(await billing("deposit", clinic.client_id, "--card", card), "--amount-cents is required")
    refused(await billing("deposit", clinic.client_id, "--amount-cents", "5000"), "either --card or --device")
    refused(await billing("deposit", clinic.client_id, "--card", strangers_card, "--amount-cents", "5000"), strangers_card)
    refused(await billing("deposit", "cli_nope", "--card", card, "--amount-cents", "5000"), "unknown client cli_nope")
    assert counts(db) == nothing and len(sandbox.transactions()) == at_gravity

    taken = (await billing("deposit", clinic.client_id, "--card", card, "--amount-cents", "5000", "--request-id", "dep-1", "--json")).json()
    assert taken["status"] == "approved" and taken["approved_cents"] == 5_000 and taken["deposit_id"]
    replay = (await billing("deposit", clinic.client_id, "--card", card, "--amount-cents", "5000", "--request-id", "dep-1", "--json")).json()
    assert replay["payment_id"] == taken["payment_id"]
    with Session(db) as session:
        deposits = list(session.exec(select(Deposit)))
    assert [(d.amount_cents, d.remaining_cents, d.status) for d in deposits] == [(5_000, 5_000, "held")]
    table = await billing("deposit", clinic.client_id, "--card", card, "--amount-cents", "5000", "--request-id", "dep-1")
    assert table.exit_code == 0 and "$50.00" in table.stdout
    assert_books_match_gateway(db, sandbox)
