"""What belongs to the subject of a trail: its invoices, payments, clients, outbox streams and workflows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, or_
from sqlmodel import Session, select

from foundation.ids import cancellation_workflow_id, client_stream, subscription_stream, subscription_workflow_id, terminal_workflow_id
from models.billing import Invoice, Payment
from models.clinic import Client as ClinicClient
from models.subscriptions import Subscription

SUBJECTS = ("subscription", "invoice", "client")


class UnknownSubject(LookupError):
    """No subscription, invoice or client with that id."""


@dataclass
class Scope:
    """The ids the trail of one subject reads, from the books and from Temporal."""

    subject: str
    subject_id: str
    invoice_ids: list[str]
    payment_ids: list[str]
    client_ids: list[str]
    streams: list[str]
    workflow_ids: list[str]
    with_deposits: bool = False


def find_scope(engine: Engine, subject: str, subject_id: str, *, reach: frozenset[str] | None = None) -> Scope:
    """The subject's scope; `UnknownSubject` when no such subscription, invoice or client exists
    (or it belongs to a location outside `reach`, None meaning every location)."""

    def hidden(location_id: str) -> bool:
        return reach is not None and location_id not in reach

    with Session(engine) as session:
        if subject == "subscription":
            sub = session.get(Subscription, subject_id)
            if sub is None or hidden(sub.location_id):
                raise UnknownSubject(f"unknown subscription {subject_id}")
            invoice_ids = list(session.exec(select(Invoice.id).where(Invoice.subscription_id == sub.id)))
            payments = _payments(session, or_(Payment.subscription_id == sub.id, Payment.invoice_id.in_(invoice_ids)))  # type: ignore[union-attr]
            streams = [subscription_stream(sub.id)]
            workflow_ids = [subscription_workflow_id(sub.id)]
            client_ids: list[str] = []
        elif subject == "invoice":
            invoice = session.get(Invoice, subject_id)
            if invoice is None or hidden(invoice.location_id):
                raise UnknownSubject(f"unknown invoice {subject_id}")
            invoice_ids = [invoice.id]
            payments = _payments(session, Payment.invoice_id == invoice.id)
            streams = []
            workflow_ids = [subscription_workflow_id(invoice.subscription_id)] if invoice.subscription_id else []
            client_ids = []
        else:
            person = session.get(ClinicClient, subject_id)
            if person is None or hidden(person.location_id):
                raise UnknownSubject(f"unknown client {subject_id}")
            invoice_ids = list(session.exec(select(Invoice.id).where(Invoice.client_id == person.id)))
            payments = _payments(session, Payment.client_id == person.id)
            subscription_ids = list(session.exec(select(Subscription.id).where(Subscription.client_id == person.id).order_by(Subscription.created_at)))
            streams = [client_stream(person.id), *(subscription_stream(s) for s in subscription_ids)]
            workflow_ids = [subscription_workflow_id(s) for s in subscription_ids]
            client_ids = [person.id]
        workflow_ids += [terminal_workflow_id(p.id) for p in payments if p.method == "terminal"]
        workflow_ids += [cancellation_workflow_id(i) for i in invoice_ids]
    return Scope(
        subject,
        subject_id,
        invoice_ids,
        [p.id for p in payments],
        client_ids,
        streams,
        list(dict.fromkeys(workflow_ids)),
        with_deposits=subject == "client",
    )


def _payments(session: Session, condition: Any) -> list[Payment]:
    return list(session.exec(select(Payment).where(condition).order_by(Payment.created_at, Payment.attempt)))
