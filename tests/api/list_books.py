"""Books written straight into the database for the list tests: two locations in two zones, rows
that tie on their sort key (the same stamp, the same name), and every status a filter can pick."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from foundation.ids import new_id, subscription_stream
from foundation.settings import SANDBOX_OID
from models.billing import Deposit, Invoice, Payment, Refund
from models.clinic import Client, Location, Pet
from models.db import session_scope
from models.outbox import emit
from models.plans import HealthPlan, PlanService
from models.subscriptions import Subscription

#: One stamp shared by several rows of each list: pages must split ties by id.
TIE = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)  # 2026-02-28 21:00 in Chicago, 2026-02-28 22:00 in New York


@dataclass
class Books:
    main: str = ""  # America/Chicago
    east: str = ""  # America/New_York
    clients: dict[str, str] = field(default_factory=dict)  # name key -> id
    pets: dict[str, str] = field(default_factory=dict)
    plans: dict[str, str] = field(default_factory=dict)
    subscriptions: dict[str, str] = field(default_factory=dict)
    invoices: dict[str, str] = field(default_factory=dict)
    payments: dict[str, str] = field(default_factory=dict)
    refunds: dict[str, str] = field(default_factory=dict)
    deposits: dict[str, str] = field(default_factory=dict)


def seed_books(engine: Engine) -> Books:
    books = Books(main=new_id("loc"), east=new_id("loc"))
    with session_scope(engine) as session:
        session.add(Location(id=books.main, name="Main", timezone="America/Chicago", gravity_oid=SANDBOX_OID, charge_time=time(9, 0)))
        session.add(Location(id=books.east, name="East", timezone="America/New_York", gravity_oid=SANDBOX_OID, charge_time=time(9, 0)))
        session.flush()
        for key, location, name, email in (
            ("ada", books.main, "Ada Lovelace", "ada@example.com"),
            ("dana1", books.main, "Dana Whitfield", "dana@example.com"),
            ("dana2", books.main, "Dana Whitfield", None),
            ("grace", books.main, "Grace Hopper", "admiral@navy.example"),
            ("alan", books.east, "Alan Turing", "alan@bletchley.example"),
        ):
            books.clients[key] = new_id("cli")
            session.add(Client(id=books.clients[key], location_id=location, name=name, email=email))
        session.flush()
        for key in books.clients:
            books.pets[key] = new_id("pet")
            session.add(Pet(id=books.pets[key], client_id=books.clients[key], name="Rex"))
        plans: tuple[tuple[str, str | None, bool, datetime], ...] = (
            ("wellness", books.main, True, TIE),
            ("senior", books.main, False, TIE),
            ("group", None, True, TIE),
            ("east", books.east, True, TIE - timedelta(days=1)),
        )
        for key, plan_location, active, stamp in plans:
            books.plans[key] = new_id("plan")
            session.add(HealthPlan(id=books.plans[key], location_id=plan_location, name=key, price_cents=4_500, active=active, created_at=stamp))
            session.flush()
            for code in ("VACCINE", "EXAM"):  # listed in code order, each plan with its own
                session.add(PlanService(id=new_id("svc"), plan_id=books.plans[key], code=code, name=f"{code} for {key}", retail_cents=5_000, quantity=1))
        session.flush()
        _subscriptions(session, books)
        _money(session, books)
    return books


def _subscriptions(session: Session, books: Books) -> None:
    rows = (
        # key, client, plan, location, status, next due (UTC), created
        ("active", "ada", "wellness", books.main, "active", datetime(2026, 4, 1, 14, tzinfo=UTC), TIE),
        ("dunned", "dana1", "wellness", books.main, "past_due", datetime(2026, 4, 2, 14, tzinfo=UTC), TIE),
        ("incident", "dana2", "group", books.main, "past_due", datetime(2026, 4, 3, 14, tzinfo=UTC), TIE),
        ("recovered", "grace", "wellness", books.main, "active", datetime(2026, 4, 4, 14, tzinfo=UTC), TIE),
        ("suspended", "ada", "senior", books.main, "suspended", datetime(2026, 4, 5, 14, tzinfo=UTC), TIE - timedelta(hours=1)),
        ("cancelled", "grace", "senior", books.main, "cancelled", None, TIE + timedelta(hours=1)),
        # 04:30 UTC on April 2 is April 1 in Chicago... and April 2 00:30 in New York.
        ("east", "alan", "east", books.east, "active", datetime(2026, 4, 2, 4, 30, tzinfo=UTC), TIE),
    )
    for key, client, plan, location, status, due, created in rows:
        books.subscriptions[key] = new_id("sub")
        session.add(
            Subscription(
                id=books.subscriptions[key],
                client_id=books.clients[client],
                pet_id=books.pets[client],
                plan_id=books.plans[plan],
                location_id=location,
                start_date=date(2026, 1, 1),
                anchor_day=1,
                status=status,
                next_due_at=due,
                created_at=created,
            )
        )
    session.flush()
    incident, recovered = subscription_stream(books.subscriptions["incident"]), subscription_stream(books.subscriptions["recovered"])
    for stream, kind in (
        (incident, "payment.retry_scheduled"),
        (incident, "payment.incident"),
        (recovered, "payment.incident"),
        (recovered, "subscription.recovered"),
    ):
        emit(session, type=kind, stream=stream, payload={"status": "past_due", "detail": kind})


def _money(session: Session, books: Books) -> None:
    invoices = (
        # key, client, location, status, created
        ("open", "ada", books.main, "open", TIE),
        ("paid", "dana1", books.main, "paid", TIE),
        ("void", "grace", books.main, "void", TIE),
        ("paid2", "ada", books.main, "paid", TIE - timedelta(hours=4)),  # 2026-02-28 in Chicago
        ("late", "ada", books.main, "open", TIE + timedelta(hours=6)),  # 2026-03-01 in Chicago
        ("east", "alan", books.east, "paid", TIE + timedelta(hours=1, minutes=30)),  # 2026-02-28 23:30 in New York
    )
    for key, client, location, status, created in invoices:
        books.invoices[key] = new_id("inv")
        session.add(
            Invoice(
                id=books.invoices[key],
                number=f"C-{books.invoices[key]}",
                kind="counter",
                client_id=books.clients[client],
                location_id=location,
                status=status,
                total_cents=5_000,
                paid_cents=5_000 if status == "paid" else 0,
                created_at=created,
            )
        )
    session.flush()
    payments = (
        # key, invoice, status, method, created
        ("card", "paid", "approved", "card_on_file", TIE),
        ("declined", "open", "declined", "card_on_file", TIE),
        ("terminal", "paid2", "approved", "terminal", TIE),
        ("credit", "paid", "approved", "credit", TIE - timedelta(hours=4)),
        ("east", "east", "approved", "terminal", TIE + timedelta(hours=1, minutes=30)),
    )
    for key, invoice_key, status, method, created in payments:
        invoice = session.get_one(Invoice, books.invoices[invoice_key])
        books.payments[key] = new_id("pay")
        session.add(
            Payment(
                id=books.payments[key],
                external_transaction_id=books.payments[key],
                attempt_key=f"test:{books.payments[key]}",
                invoice_id=invoice.id,
                client_id=invoice.client_id,
                location_id=invoice.location_id,
                method=method,
                status=status,
                amount_cents=5_000,
                approved_cents=5_000 if status == "approved" else 0,
                decline_reason="insufficient_funds" if status == "declined" else None,
                created_at=created,
            )
        )
    session.flush()
    for key, payment_key, kind, status, created in (
        ("void", "card", "void", "done", TIE),
        ("refund", "terminal", "refund", "done", TIE),
        ("failed", "card", "refund", "failed", TIE),
        ("east", "east", "refund", "pending", TIE + timedelta(hours=2)),
    ):
        payment = session.get_one(Payment, books.payments[payment_key])
        books.refunds[key] = new_id("ref")
        session.add(
            Refund(
                id=books.refunds[key],
                external_transaction_id=books.refunds[key],
                attempt_key=f"test:{books.refunds[key]}",
                payment_id=payment.id,
                invoice_id=payment.invoice_id,
                kind=kind,
                status=status,
                amount_cents=1_000,
                created_at=created,
            )
        )
    for key, client, location, status, source, created in (
        ("held", "ada", books.main, "held", "deposit", TIE),
        ("used", "dana1", books.main, "used", "overpayment", TIE),
        ("prorated", "grace", books.main, "held", "proration", TIE),
        ("east", "alan", books.east, "held", "deposit", TIE - timedelta(days=1)),
    ):
        books.deposits[key] = new_id("dep")
        session.add(
            Deposit(
                id=books.deposits[key],
                client_id=books.clients[client],
                location_id=location,
                amount_cents=2_000,
                remaining_cents=0 if status == "used" else 2_000,
                status=status,
                source=source,
                created_at=created,
            )
        )
