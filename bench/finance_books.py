"""Three years of a clinic group's books, made by living each subscription's life, for `billing bench --finance`.

Rows come out as tuples in the column order of `COLUMNS`, handed to a sink (the COPY streams of
`bench.finance_seed`), with the ids, keys, ledger references and event keys the engine itself derives
(`foundation.ids`), the postings `books` makes (every transaction balances), and every CHECK of the
models respected. The shapes: ~10 locations in five US time zones, ~0.6 clients per subscription,
monthly and yearly plans, ~5% first attempts declined and retried on the default dunning schedule,
some customer refunds, counter deposits applied as client credit, cancellations and ended terms.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

from bench.finance_ids import event_id_for, external_id, invoice_id_for_cycle, row_id, subscription_id_for
from foundation.ids import (
    charge_key,
    client_stream,
    credit_applied_reference,
    customer_refund_key,
    cycle_invoice_number,
    cycle_key,
    deposit_received_event_key,
    deposit_refund_key,
    enrollment_key,
    invoice_issued_event_key,
    invoice_issued_reference,
    invoice_void_reference,
    invoice_voided_event_key,
    payment_approved_reference,
    payment_failed_event_key,
    payment_succeeded_event_key,
    refund_attempt_key,
    refund_done_event_key,
    refund_done_reference,
    subscription_stream,
    terminal_attempt_key,
)
from models.ledger import Account
from workflows import calendar
from workflows.calendar import local_instant
from workflows.dunning import DEFAULT_SCHEDULE

Row = tuple[Any, ...]
# A payment's gateway answer: (outcome, decline reason, decline class, message, Gravity's unique id).
Facts = tuple[str, str | None, str | None, str, str | None]
Sink = Callable[[str, Row], None]


def _columns(names: str) -> tuple[str, ...]:
    return tuple(names.split())


# Each table's columns, in the order the rows below are written (and COPYed).
COLUMNS: dict[str, tuple[str, ...]] = {
    "location": _columns("id name timezone gravity_oid allow_recurring_gravity charge_time overpayment_policy max_invoice_cents max_invoice_lines created_at"),
    "health_plan": _columns(
        "id location_id name price_cents enrollment_fee_cents interval_months term_months auto_renew dunning "
        "proration_policy cancellation_policy active created_at"
    ),
    "plan_service": _columns("id plan_id code name retail_cents quantity"),
    "client": _columns("id location_id name email created_at"),
    "pet": _columns("id client_id name species"),
    "saved_card": _columns("id client_id location_id gravity_ref masked_number brand exp_month exp_year fingerprint is_default disabled created_at"),
    "subscription": _columns(
        "id client_id pet_id plan_id location_id card_id start_date anchor_day status term_end cancel_at_term_end "
        "next_due_at cancelled_at created_at updated_at"
    ),
    "invoice": _columns(
        "id number kind client_id location_id subscription_id cycle_key period_start period_end status total_cents "
        "paid_cents due_at next_attempt_at created_at updated_at"
    ),
    "invoice_line": _columns("id invoice_id kind description amount_cents"),
    "payment": _columns(
        "id external_transaction_id attempt_key invoice_id client_id location_id subscription_id card_id method purpose "
        "attempt status amount_cents approved_cents refunded_cents decline_reason decline_class result_message "
        "gravity_unique_trans_id masked_number brand attempted_at created_at updated_at"
    ),
    "refund": _columns(
        "id external_transaction_id attempt_key payment_id invoice_id kind status amount_cents credit_cents deposit_id "
        "reason gravity_unique_trans_id created_at"
    ),
    "deposit": _columns("id client_id location_id payment_id amount_cents remaining_cents status source created_at"),
    "credit_application": _columns("id deposit_id invoice_id amount_cents created_at"),
    "ledger_transaction": _columns("id reference kind memo location_id client_id invoice_id payment_id created_at"),
    "ledger_entry": _columns("id transaction_id account amount_cents"),
    "outbox_event": _columns("id event_id type stream seq payload created_at delivered_at delivery_attempts"),
    "outbox_stream": _columns("stream last_seq"),
}

# Location names and zones: the group spans the continental US and Arizona (no daylight time).
LOCATIONS = (
    ("Harbor Animal Hospital", "America/New_York"),
    ("Maple Street Vet", "America/New_York"),
    ("Riverside Pet Clinic", "America/New_York"),
    ("Prairie Paws", "America/Chicago"),
    ("Lakeshore Veterinary", "America/Chicago"),
    ("Bluebonnet Animal Care", "America/Chicago"),
    ("Front Range Vets", "America/Denver"),
    ("Saguaro Pet Hospital", "America/Phoenix"),
    ("Bayview Animal Clinic", "America/Los_Angeles"),
    ("Cascade Veterinary", "America/Los_Angeles"),
)
# (name, price, enrollment fee, interval months, weight among a location's enrollments)
PLANS = (
    ("Puppy & Kitten Wellness", 3_900, 4_900, 1, 25),
    ("Adult Wellness", 4_900, 0, 1, 35),
    ("Senior Care", 6_900, 2_500, 1, 20),
    ("Annual Essentials", 45_000, 0, 12, 12),
    ("Annual Complete", 72_000, 5_000, 12, 8),
)
GROUP_PLAN = ("Dental Plus (group)", 2_900, 0, 1, 6)
SERVICES = (("EXAM", "Wellness exam", 6_500), ("VAX", "Core vaccines", 4_800), ("DENTAL", "Dental cleaning", 28_000), ("LAB", "Annual bloodwork", 14_500))
FIRST_NAMES = ("Olivia", "Liam", "Emma", "Noah", "Ava", "Mateo", "Sophia", "Elijah", "Isabella", "James", "Mia", "Lucas", "Amelia", "Ethan", "Harper")
LAST_NAMES = ("Garcia", "Smith", "Nguyen", "Johnson", "Patel", "Brown", "Kim", "Martinez", "Davis", "Lopez", "Wilson", "Clark", "Lewis", "Young", "Hall")
PET_NAMES = ("Bella", "Max", "Luna", "Charlie", "Lucy", "Cooper", "Daisy", "Milo", "Bailey", "Nala", "Rocky", "Loki")
DECLINES = (("Insufficient funds", "soft"), ("Do not honor", "soft"), ("Expired card", "hard"), ("Pick up card", "hard"))

YEARS = 3
CLIENTS_PER_SUBSCRIPTION = 0.6
FIRST_DECLINE = 0.05  # first attempts declined
RETRY_APPROVES = 0.45  # each retry of a declined cycle approved
CANCELLED = 0.2
ENDS_AT_TERM = 0.08
PAUSED = 0.01
CUSTOMER_REFUND = 0.01  # approved charges refunded (in full or half) at the client's request
DEPOSIT = 0.02  # subscriptions whose client leaves a counter deposit before one cycle
DEPOSIT_REFUNDED = 0.25  # of the deposits with credit left: the rest given back to the card
RETRY_OFFSETS = (0, *DEFAULT_SCHEDULE.retry_offsets_days)


@lru_cache(maxsize=262_144)
def period_for(start: date, index: int, *, interval_months: int = 1) -> tuple[date, date]:
    """`workflows.calendar.period_for`, cached: subscriptions share start dates."""
    return calendar.period_for(start, index, interval_months=interval_months)


@lru_cache(maxsize=65_536)
def due_at(day: date, tz: str) -> datetime:
    """A cycle's due instant (09:00 local); cached, since a group has few distinct (day, zone) pairs."""
    return local_instant(day, time(9, 0), tz=tz)


@dataclass(frozen=True)
class Plan:
    id: str
    location_id: str | None
    name: str
    price_cents: int
    enrollment_fee_cents: int
    interval_months: int


@dataclass(frozen=True)
class Customer:
    id: str
    location_id: str
    tz: str
    card_id: str
    masked_number: str
    brand: str


@dataclass
class Cycle:
    """What one cycle's invoice came to, for the subscription's closing status."""

    invoice_id: str
    status: str
    next_attempt_at: datetime | None
    updated: datetime


class GroupBooks:
    """Writes one clinic group's rows to `sink`; `counters` keeps the serial ids and stream seqs."""

    def __init__(self, sink: Sink, *, subscriptions: int, now: datetime, seed: int = 17) -> None:
        self.sink = sink
        self.subscriptions = subscriptions
        self.now = now
        self.today = now.date()
        self.start = date(self.today.year - YEARS, self.today.month, 1)
        self.rng = random.Random(seed)
        self.serial: dict[str, int] = {}
        self.seq: dict[str, int] = {}
        self.locations: list[tuple[str, str]] = []
        self.plans: dict[str, list[Plan]] = {}
        self.group_plans: list[Plan] = []

    # ------------------------------------------------------------------ shared helpers
    def next_id(self, table: str) -> int:
        value = self.serial.get(table, 0) + 1
        self.serial[table] = value
        return value

    def token(self, prefix: str, digits: int = 24) -> str:
        return f"{prefix}_{self.rng.getrandbits(digits * 4):0{digits}x}"

    def post(self, reference: str, kind: str, location_id: str, at: datetime, entries: list[tuple[Account, int]], **refs: str | None) -> None:
        """A balanced ledger transaction and its non-zero entries, as `books.ledger.post` writes them."""
        assert sum(amount for _, amount in entries) == 0, (reference, entries)
        tx = self.next_id("ledger_transaction")
        self.sink("ledger_transaction", (tx, reference, kind, "", location_id, refs.get("client_id"), refs.get("invoice_id"), refs.get("payment_id"), at))
        for account, amount in entries:
            if amount:
                self.sink("ledger_entry", (self.next_id("ledger_entry"), tx, str(account), amount))

    def event(self, type_: str, stream: str, key: str, at: datetime, payload: str) -> None:
        """One delivered outbox event with the next number of its stream (`payload`: JSON text)."""
        seq = self.seq.get(stream, 0) + 1
        self.seq[stream] = seq
        delivered = at + timedelta(seconds=2)
        self.sink("outbox_event", (self.next_id("outbox_event"), event_id_for(key), type_, stream, seq, payload, at, delivered, 1))

    # ------------------------------------------------------------------ the group
    def write(self) -> None:
        """The whole group: locations, plans, clients and cards, then each subscription's life."""
        self.write_locations()
        customers = self.write_clients()
        for index in range(self.subscriptions):
            customer = customers[index] if index < len(customers) else self.rng.choice(customers)
            self.write_subscription(customer)
        for stream, last in self.seq.items():
            self.sink("outbox_stream", (stream, last))

    def write_locations(self) -> None:
        opened = datetime(self.start.year - 2, 1, 1, tzinfo=UTC)
        count = len(LOCATIONS) if self.subscriptions >= 1_000 else 3
        for index, (name, tz) in enumerate(LOCATIONS[:count]):
            location_id = f"loc_bench_{index:02d}"
            self.sink("location", (location_id, name, tz, f"oid-bench-{index:02d}", True, time(9, 0), "give_back", 5_000_000, 50, opened))
            self.locations.append((location_id, tz))
            self.plans[location_id] = [self.write_plan(location_id, spec, opened) for spec in PLANS]
        self.group_plans = [self.write_plan(None, GROUP_PLAN, opened)]

    def write_plan(self, location_id: str | None, spec: tuple[str, int, int, int, int], opened: datetime) -> Plan:
        name, price, fee, interval, _ = spec
        plan = Plan(self.token("plan"), location_id, name, price, fee, interval)
        self.sink("health_plan", (plan.id, location_id, name, price, fee, interval, 12, True, None, "prorate", "charge_redeemed", True, opened))
        for code, label, retail in SERVICES[: 2 + (interval == 12) * 2]:
            self.sink("plan_service", (self.token("svc"), plan.id, code, label, retail, 1))
        return plan

    def write_clients(self) -> list[Customer]:
        count = max(len(self.locations), round(self.subscriptions * CLIENTS_PER_SUBSCRIPTION))
        weights = [1.0 + (index % 4) * 0.5 for index in range(len(self.locations))]  # some locations are busier
        customers = []
        for index in range(count):
            location_id, tz = self.locations[index] if index < len(self.locations) else self.rng.choices(self.locations, weights)[0]
            client_id = self.token("cli")
            first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
            created = datetime.combine(self.start - timedelta(days=self.rng.randrange(0, 700)), time(15), tzinfo=UTC)
            self.sink("client", (client_id, location_id, f"{first} {last}", f"{first.lower()}.{last.lower()}{index}@example.com", created))
            brand, digits = ("VS", "4111") if self.rng.random() < 0.7 else ("MC", "4444")
            masked = f"************{self.rng.randrange(1000, 9999) if digits == '4111' else digits}"
            card_id = self.token("card")
            row = (card_id, client_id, location_id, self.token("gref", 32), masked, brand, self.rng.randint(1, 12), self.today.year + self.rng.randint(0, 4))
            self.sink("saved_card", (*row, self.token("fp", 16), True, False, created))
            customers.append(Customer(client_id, location_id, tz, card_id, masked, brand))
        return customers

    # ------------------------------------------------------------------ one subscription's life
    def write_subscription(self, customer: Customer) -> None:
        rng = self.rng
        choices = self.plans[customer.location_id] + self.group_plans
        plan = rng.choices(choices, [spec[4] for spec in (*PLANS, GROUP_PLAN)])[0]
        # A group that grew: more enrollments lately than three years ago.
        start = self.today - timedelta(days=1 + int(((self.today - self.start).days - 1) * rng.random() ** 2))
        pet_id = self.token("pet")
        self.sink("pet", (pet_id, customer.id, rng.choice(PET_NAMES), "dog" if rng.random() < 0.6 else "cat"))
        sub_id = subscription_id_for(enrollment_key(customer.id, pet_id, plan.id, start))
        stop, status = self.fate(start)
        deposit_cycle = rng.randrange(0, 12) if rng.random() < DEPOSIT else -1
        cycles: list[Cycle] = []
        index = 0
        while True:
            period_start, period_end = period_for(start, index, interval_months=plan.interval_months)
            due = due_at(period_start, customer.tz)
            if due > self.now or (stop is not None and period_start >= stop):
                break
            cycles.append(self.write_cycle(customer, sub_id, plan, index, period_start, period_end, due, deposit=index == deposit_cycle))
            index += 1
        next_due = due_at(period_for(start, index, interval_months=plan.interval_months)[0], customer.tz)
        last = cycles[-1] if cycles else None
        if status == "active" and last is not None and last.status == "open":
            status = "past_due" if last.next_attempt_at is not None else "suspended"
        elif status == "active" and rng.random() < PAUSED:
            status = "paused"
        live = status in ("active", "past_due", "suspended", "paused")
        months = index * plan.interval_months
        term_end = period_for(start, -(-months // 12) * 12 or 12, interval_months=1)[0] if live else stop
        cancelled_at = due_at(stop, customer.tz) - timedelta(hours=3) if status == "cancelled" and stop else None
        created = due_at(start, customer.tz) - timedelta(minutes=5)
        updated = max(created, cancelled_at or created, *(cycle.updated for cycle in cycles[-1:]))
        self.sink(
            "subscription",
            (
                sub_id,
                customer.id,
                pet_id,
                plan.id,
                customer.location_id,
                customer.card_id,
                start,
                start.day,
                status,
                term_end,
                status == "ended" or (live and rng.random() < ENDS_AT_TERM / 4),
                next_due if live and status != "suspended" else None,
                cancelled_at,
                created,
                updated,
            ),
        )

    def fate(self, start: date) -> tuple[date | None, str]:
        """When the subscription stops billing, and its status today."""
        roll = self.rng.random()
        if roll < CANCELLED:
            cancel = start + timedelta(days=self.rng.randint(20, 900))
            return (cancel, "cancelled") if cancel < self.today else (None, "active")
        if roll < CANCELLED + ENDS_AT_TERM:
            end = period_for(start, 12, interval_months=1)[0]
            return (end, "ended") if end <= self.today else (None, "active")
        return None, "active"

    def write_cycle(
        self, customer: Customer, sub_id: str, plan: Plan, index: int, period_start: date, period_end: date, due: datetime, *, deposit: bool
    ) -> Cycle:
        """One cycle's invoice, its lines, postings and events, the credit applied and the charge attempts."""
        invoice_id = invoice_id_for_cycle(sub_id, period_start)
        lines = [("plan_fee", f"{plan.name}, {period_start:%b %Y}", plan.price_cents, Account.PLAN_REVENUE)]
        if index == 0 and plan.enrollment_fee_cents:
            lines.append(("enrollment_fee", f"{plan.name} enrollment fee", plan.enrollment_fee_cents, Account.FEE_REVENUE))
        total = sum(line[2] for line in lines)
        refs = {"client_id": customer.id, "invoice_id": invoice_id}
        stream = subscription_stream(sub_id)
        for kind, description, amount, _ in lines:
            self.sink("invoice_line", (self.next_id("invoice_line"), invoice_id, kind, description, amount))
        revenue: dict[Account, int] = {}
        for *_, amount, account in lines:
            revenue[account] = revenue.get(account, 0) + amount
        self.post(
            invoice_issued_reference(invoice_id),
            "invoice_issued",
            customer.location_id,
            due,
            [(Account.RECEIVABLE, total), *((account, -cents) for account, cents in revenue.items())],
            **refs,
        )
        self.event(
            "invoice.issued",
            stream,
            invoice_issued_event_key(invoice_id),
            due,
            f'{{"invoice_id": "{invoice_id}", "subscription_id": "{sub_id}", "total_cents": {total}}}',
        )
        paid = self.write_deposit(customer, invoice_id, total, due) if deposit else 0
        outcome = self.write_attempts(customer, sub_id, invoice_id, period_start, total - paid, due, first_declines=not deposit)
        paid += outcome[0]
        status, next_attempt = ("paid", None) if paid == total else ("open", outcome[1])
        updated = due if status == "open" else outcome[2]
        if status == "open" and outcome[1] is None and period_end <= self.today:
            # Dunning ran out on an older cycle: the clinic wrote the unpaid invoice off.
            status, updated = "void", due + timedelta(days=RETRY_OFFSETS[-1] + 1)
            self.post(
                invoice_void_reference(invoice_id),
                "invoice_void",
                customer.location_id,
                updated,
                [*((account, cents) for account, cents in revenue.items()), (Account.RECEIVABLE, -total)],
                **refs,
            )
            self.event(
                "invoice.voided", stream, invoice_voided_event_key(invoice_id), updated, f'{{"invoice_id": "{invoice_id}", "reason": "dunning exhausted"}}'
            )
        row = (invoice_id, cycle_invoice_number(sub_id, index), "subscription", customer.id, customer.location_id, sub_id, cycle_key(sub_id, period_start))
        self.sink("invoice", (*row, period_start, period_end, status, total, paid, due, next_attempt, due, updated))
        return Cycle(invoice_id, status, next_attempt, updated)

    def write_attempts(
        self, customer: Customer, sub_id: str, invoice_id: str, period_start: date, amount: int, due: datetime, *, first_declines: bool
    ) -> tuple[int, datetime | None, datetime]:
        """The card charges of one cycle on the dunning schedule; returns (paid, next attempt, last attempt's time)."""
        if amount == 0:
            return 0, None, due
        rng = self.rng
        declined_first = first_declines and rng.random() < FIRST_DECLINE
        stream = subscription_stream(sub_id)
        at = due
        for attempt, offset in enumerate(RETRY_OFFSETS, start=1):
            at = due + timedelta(days=offset, seconds=rng.randrange(1, 90))
            if at > self.now:
                return 0, at, due
            approved = not declined_first if attempt == 1 else rng.random() < RETRY_APPROVES
            key = charge_key(sub_id, period_start, attempt)
            ext = external_id(key)
            payment_id = row_id("pay_", ext)
            if approved:
                refunded = self.write_customer_refund(customer, payment_id, invoice_id, amount, at) if rng.random() < CUSTOMER_REFUND else 0
                status = "refunded" if refunded == amount else "approved"
                facts: Facts = ("approved", None, None, "APPROVAL", self.token("gt", 20))
                self.write_payment(customer, payment_id, ext, key, invoice_id, sub_id, attempt, status, amount, amount, refunded, facts, at)
                self.post(
                    payment_approved_reference(ext),
                    "payment_approved",
                    customer.location_id,
                    at,
                    [(Account.GATEWAY_CLEARING, amount), (Account.RECEIVABLE, -amount)],
                    client_id=customer.id,
                    invoice_id=invoice_id,
                    payment_id=payment_id,
                )
                payload = f'{{"payment_id": "{payment_id}", "invoice_id": "{invoice_id}", "amount_cents": {amount}, "attempt": {attempt}}}'
                self.event("payment.succeeded", stream, payment_succeeded_event_key(payment_id), at, payload)
                return amount, None, at
            reason, decline_class = rng.choice(DECLINES)
            facts = ("declined", reason, decline_class, reason.upper(), None)
            self.write_payment(customer, payment_id, ext, key, invoice_id, sub_id, attempt, "declined", amount, 0, 0, facts, at)
            payload = f'{{"payment_id": "{payment_id}", "invoice_id": "{invoice_id}", "decline_reason": "{reason}", "attempt": {attempt}}}'
            self.event("payment.failed", stream, payment_failed_event_key(payment_id), at, payload)
        return 0, None, at

    def write_payment(
        self,
        customer: Customer,
        payment_id: str,
        ext: str,
        key: str,
        invoice_id: str | None,
        sub_id: str | None,
        attempt: int,
        status: str,
        amount: int,
        approved: int,
        refunded: int,
        facts: Facts,
        at: datetime,
    ) -> None:
        _, reason, decline_class, message, unique = facts
        method, purpose, card = ("card_on_file", "invoice", customer.card_id) if sub_id else ("terminal", "deposit", None)
        row = (payment_id, ext, key, invoice_id, customer.id, customer.location_id, sub_id, card, method, purpose, attempt, status, amount, approved, refunded)
        self.sink("payment", (*row, reason, decline_class, message, unique, customer.masked_number, customer.brand, at, at, at))

    def write_customer_refund(self, customer: Customer, payment_id: str, invoice_id: str, amount: int, charged: datetime) -> int:
        """A refund at the client's request, a few days after the charge: in full or half."""
        refund = amount if self.rng.random() < 0.6 else amount // 2
        key = refund_attempt_key(customer_refund_key(payment_id, self.token("req", 12)))
        ext = external_id(key)
        refund_id = row_id("ref_", ext)
        at = charged + timedelta(days=self.rng.randint(1, 20))
        self.sink("refund", (refund_id, ext, key, payment_id, invoice_id, "refund", "done", refund, 0, None, "client request", self.token("gt", 20), at))
        entries = [(Account.REFUNDS, refund), (Account.GATEWAY_CLEARING, -refund)]
        self.post(
            refund_done_reference(ext), "refund_done", customer.location_id, at, entries, client_id=customer.id, invoice_id=invoice_id, payment_id=payment_id
        )
        self.event("refund.done", client_stream(customer.id), refund_done_event_key(refund_id), at, f'{{"refund_id": "{refund_id}", "amount_cents": {refund}}}')
        return refund

    def write_deposit(self, customer: Customer, invoice_id: str, total: int, due: datetime) -> int:
        """A counter deposit left days before the cycle, applied to its invoice (what is left stays
        client credit, or is given back); returns the credit applied."""
        rng = self.rng
        amount = rng.choice((2_000, 5_000, 10_000, 20_000))
        key = terminal_attempt_key(self.token("req", 16))
        ext = external_id(key)
        payment_id, deposit_id = row_id("pay_", ext), row_id("dep_", ext)
        at = due - timedelta(days=rng.randint(2, 20))
        applied = min(amount, total)
        left = amount - applied
        given_back = left if left and rng.random() < DEPOSIT_REFUNDED else 0
        facts: Facts = ("approved", None, None, "APPROVAL", self.token("gt", 20))
        self.write_payment(customer, payment_id, ext, key, None, None, 1, "approved", amount, amount, given_back, facts, at)
        self.post(
            payment_approved_reference(ext),
            "payment_approved",
            customer.location_id,
            at,
            [(Account.GATEWAY_CLEARING, amount), (Account.CLIENT_CREDIT, -amount)],
            client_id=customer.id,
            payment_id=payment_id,
        )
        stream = client_stream(customer.id)
        self.event("deposit.received", stream, deposit_received_event_key(deposit_id), at, f'{{"deposit_id": "{deposit_id}", "amount_cents": {amount}}}')
        status = "refunded" if given_back else ("held" if left else "used")
        self.sink("deposit", (deposit_id, customer.id, customer.location_id, payment_id, amount, left - given_back, status, "deposit", at))
        application = self.next_id("credit_application")
        self.sink("credit_application", (application, deposit_id, invoice_id, applied, due))
        entries = [(Account.CLIENT_CREDIT, applied), (Account.RECEIVABLE, -applied)]
        self.post(credit_applied_reference(application), "credit_applied", customer.location_id, due, entries, client_id=customer.id, invoice_id=invoice_id)
        if given_back:
            self.write_deposit_refund(customer, payment_id, deposit_id, given_back, due + timedelta(days=rng.randint(1, 10)))
        return applied

    def write_deposit_refund(self, customer: Customer, payment_id: str, deposit_id: str, amount: int, at: datetime) -> None:
        key = refund_attempt_key(deposit_refund_key(deposit_id, self.token("req", 12)))
        ext = external_id(key)
        refund_id = row_id("ref_", ext)
        self.sink("refund", (refund_id, ext, key, payment_id, None, "refund", "done", amount, amount, deposit_id, "credit returned", self.token("gt", 20), at))
        entries = [(Account.CLIENT_CREDIT, amount), (Account.GATEWAY_CLEARING, -amount)]
        self.post(refund_done_reference(ext), "refund_done", customer.location_id, at, entries, client_id=customer.id, payment_id=payment_id)
        self.event("refund.done", client_stream(customer.id), refund_done_event_key(refund_id), at, f'{{"refund_id": "{refund_id}", "amount_cents": {amount}}}')
