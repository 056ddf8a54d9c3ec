"""The database itself refuses what would double-charge, double-invoice or unbalance the books."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError, InternalError
from sqlmodel import Session

from books.ledger import UnbalancedTransaction, is_balanced, post
from foundation.ids import new_id
from models.billing import Invoice, InvoiceLine, Payment, Refund
from models.clinic import SavedCard
from models.db import session_scope
from models.ledger import Account, LedgerEntry, LedgerTransaction
from models.plans import HealthPlan
from tests.support.clinic import Clinic, add_card, make_clinic

DB_ERRORS = (IntegrityError, InternalError)


def _invoice(clinic: Clinic, **overrides: object) -> Invoice:
    values: dict[str, Any] = {
        "id": new_id("inv"),
        "number": new_id("N"),
        "kind": "counter",
        "client_id": clinic.client_id,
        "location_id": clinic.location_id,
        "total_cents": 5_000,
    }
    values.update(overrides)
    return Invoice(**values)


def _payment(clinic: Clinic, invoice_id: str, **overrides: object) -> Payment:
    values: dict[str, Any] = {
        "id": new_id("pay"),
        "external_transaction_id": new_id("ext"),
        "attempt_key": new_id("key"),
        "invoice_id": invoice_id,
        "client_id": clinic.client_id,
        "location_id": clinic.location_id,
        "method": "card_on_file",
        "amount_cents": 5_000,
    }
    values.update(overrides)
    return Payment(**values)


def _insert(engine: Engine, *rows: object) -> None:
    with session_scope(engine) as session:
        for row in rows:
            session.add(row)
            session.flush()


def test_second_payment_with_same_external_transaction_id_is_refused(db: Engine) -> None:
    clinic = make_clinic(db)
    invoice = _invoice(clinic)
    _insert(db, invoice)
    _insert(db, _payment(clinic, invoice.id, external_transaction_id="ext-1"))
    with pytest.raises(IntegrityError, match="external_transaction_id"):
        _insert(db, _payment(clinic, invoice.id, external_transaction_id="ext-1"))


def test_second_payment_with_same_attempt_key_is_refused(db: Engine) -> None:
    clinic = make_clinic(db)
    invoice = _invoice(clinic)
    _insert(db, invoice)
    _insert(db, _payment(clinic, invoice.id, attempt_key="charge:s:2026-01-01:1"))
    with pytest.raises(IntegrityError, match="attempt_key"):
        _insert(db, _payment(clinic, invoice.id, attempt_key="charge:s:2026-01-01:1"))


def test_second_invoice_for_the_same_cycle_is_refused(db: Engine) -> None:
    clinic = make_clinic(db)
    key = "cycle:sub_1:2026-01-31"
    _insert(db, _invoice(clinic, kind="subscription", cycle_key=key, period_start=date(2026, 1, 31)))
    with pytest.raises(IntegrityError, match="cycle_key"):
        _insert(db, _invoice(clinic, kind="subscription", cycle_key=key, period_start=date(2026, 1, 31)))


def test_subscription_invoice_needs_a_cycle_key(db: Engine) -> None:
    clinic = make_clinic(db)
    with pytest.raises(IntegrityError, match="ck_invoice_cycle_key"):
        _insert(db, _invoice(clinic, kind="subscription", cycle_key=None))


@pytest.mark.parametrize(
    ("row", "constraint"),
    [
        ("plan_price", "ck_health_plan_price_cents_nonneg"),
        ("line_amount", "ck_invoice_line_amount_cents_nonneg"),
        ("payment_amount", "ck_payment_amount_cents_nonneg"),
        ("overpaid", "ck_invoice_not_overpaid"),
        ("refund_credit_above_amount", "ck_refund_credit_le_amount"),
        ("refund_zero", "ck_refund_positive"),
    ],
)
def test_amounts_are_checked_by_the_database(db: Engine, row: str, constraint: str) -> None:
    clinic = make_clinic(db)
    invoice = _invoice(clinic)
    _insert(db, invoice)
    payment = _payment(clinic, invoice.id, status="approved", approved_cents=5_000)
    _insert(db, payment)
    bad = {
        "plan_price": lambda: HealthPlan(id=new_id("plan"), name="Bad", price_cents=-1),
        "line_amount": lambda: InvoiceLine(invoice_id=invoice.id, kind="service", description="x", amount_cents=-5),
        "payment_amount": lambda: _payment(clinic, invoice.id, amount_cents=-100),
        "overpaid": lambda: _invoice(clinic, total_cents=100, paid_cents=101),
        "refund_credit_above_amount": lambda: Refund(
            id=new_id("ref"),
            external_transaction_id=new_id("x"),
            attempt_key=new_id("k"),
            payment_id=payment.id,
            kind="refund",
            amount_cents=100,
            credit_cents=101,
        ),
        "refund_zero": lambda: Refund(
            id=new_id("ref"), external_transaction_id=new_id("x"), attempt_key=new_id("k"), payment_id=payment.id, kind="refund", amount_cents=0
        ),
    }[row]()
    with pytest.raises(IntegrityError, match=constraint):
        _insert(db, bad)


def test_an_approval_above_the_request_is_a_fact_the_books_take(db: Engine) -> None:
    """A tip or surcharge at the terminal approves more than was asked; no constraint refuses it."""
    clinic = make_clinic(db)
    invoice = _invoice(clinic)
    _insert(db, invoice)
    _insert(db, _payment(clinic, invoice.id, status="approved", amount_cents=5_000, approved_cents=5_750))


def test_foreign_keys_are_enforced(db: Engine) -> None:
    clinic = make_clinic(db)
    with pytest.raises(IntegrityError, match="foreign key"):
        _insert(db, _payment(clinic, "inv_that_does_not_exist"))


def test_only_one_default_card_per_client(db: Engine) -> None:
    clinic = make_clinic(db)
    add_card(db, clinic, gravity_ref="ref-1", default=True)
    with pytest.raises(IntegrityError, match="uq_saved_card_one_default"):
        add_card(db, clinic, gravity_ref="ref-2", default=True)


def test_saved_card_has_no_column_for_a_card_number_or_security_code() -> None:
    columns = set(SavedCard.__table__.columns.keys())  # type: ignore[attr-defined]  # SQLModel sets __table__ on table classes
    assert not columns & {"card_number", "pan", "cvv", "security_code", "card_security_code"}
    assert "masked_number" in columns


def test_unbalanced_ledger_transaction_is_refused_by_the_database(db: Engine) -> None:
    clinic = make_clinic(db)
    with pytest.raises(DB_ERRORS, match="does not balance"), session_scope(db) as session:
        txn = LedgerTransaction(reference="bad-1", kind="test", location_id=clinic.location_id)
        session.add(txn)
        session.flush()
        assert txn.id is not None  # given by the flush
        session.add(LedgerEntry(transaction_id=txn.id, account=Account.RECEIVABLE, amount_cents=100))
        session.add(LedgerEntry(transaction_id=txn.id, account=Account.PLAN_REVENUE, amount_cents=-99))
    with Session(db) as session:
        assert session.exec(text("SELECT count(*) FROM ledger_transaction")).one()[0] == 0  # type: ignore[call-overload]  # SQLModel types exec for select(); raw SQL runs too


def test_unbalanced_ledger_transaction_is_refused_before_the_database(db: Engine) -> None:
    clinic = make_clinic(db)
    with pytest.raises(UnbalancedTransaction), session_scope(db) as session:
        post(session, reference="bad-2", kind="test", location_id=clinic.location_id, entries=[(Account.RECEIVABLE, 100), (Account.PLAN_REVENUE, -1)])


def test_posting_is_idempotent_by_reference_and_balanced(db: Engine) -> None:
    clinic = make_clinic(db)
    entries = [(Account.RECEIVABLE, 4_500), (Account.PLAN_REVENUE, -4_500)]
    with session_scope(db) as session:
        first = post(session, reference="invoice:x:issued", kind="invoice_issued", location_id=clinic.location_id, entries=entries)
    with session_scope(db) as session:
        second = post(session, reference="invoice:x:issued", kind="invoice_issued", location_id=clinic.location_id, entries=entries)
        assert first is not None and second is None  # the second post is the same transaction: nothing added
        assert session.exec(text("SELECT count(*) FROM ledger_entry")).one()[0] == 2  # type: ignore[call-overload]  # SQLModel types exec for select(); raw SQL runs too
        assert is_balanced(session)


def test_ledger_is_append_only(db: Engine) -> None:
    clinic = make_clinic(db)
    with session_scope(db) as session:
        post(session, reference="r", kind="k", location_id=clinic.location_id, entries=[(Account.RECEIVABLE, 1), (Account.PLAN_REVENUE, -1)])
    with pytest.raises(DB_ERRORS, match="append-only"), session_scope(db) as session:
        session.exec(text("UPDATE ledger_entry SET amount_cents = 2"))  # type: ignore[call-overload]  # SQLModel types exec for select(); raw SQL runs too


def test_migrations_build_the_schema_from_nothing(database_url: str) -> None:
    """The session database was built by `upgrade_to_head` alone; its head is the newest revision."""
    from alembic.script import ScriptDirectory

    from models.db import get_engine
    from models.migrate import alembic_config

    heads = ScriptDirectory.from_config(alembic_config(database_url)).get_heads()
    with get_engine(database_url).connect() as conn:
        current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    assert [current] == heads
