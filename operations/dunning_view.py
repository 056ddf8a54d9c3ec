"""Which subscriptions are in dunning (past due) or suspended now, and why: from the database alone.

Why not from Temporal: finance should not need Temporal's query syntax or the value `past_due`. The
subscription row mirrors the workflow's status; the payments hold each attempt and its decline; the
outbox holds the workflow's own words for its last decision. The next retry is worked out with the
same pure schedule function the workflow uses (`workflows.dunning.next_step`); the workflow may
start it a little later than that instant, to spread a herd of retries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from foundation.ids import subscription_stream
from foundation.statuses import InvoiceStatus, SubscriptionStatus
from models.billing import Invoice, Payment
from models.clinic import Client, Location, SavedCard
from models.outbox import OutboxEvent
from models.plans import HealthPlan
from models.subscriptions import Subscription
from workflows import dunning

IN_DUNNING = (SubscriptionStatus.PAST_DUE, SubscriptionStatus.SUSPENDED)


class DunningViewRefused(ValueError):
    """The location asked for is not one the caller can see."""


@dataclass(frozen=True)
class DunningRow:
    subscription_id: str
    location_id: str
    timezone: str
    client_id: str
    client_name: str
    plan_name: str
    status: str
    invoice_id: str | None
    owed_cents: int
    attempts: int
    last_decline_reason: str | None
    last_decline_class: str | None
    last_attempt_at: datetime | None
    next_retry_at: datetime | None
    card: str
    why: str


def subscriptions_in_dunning(engine: Engine, *, location_id: str | None = None, reach: frozenset[str] | None = None) -> list[DunningRow]:
    """Every past-due or suspended subscription (of `location_id`, or every location in reach), by location and client."""
    if location_id is not None and reach is not None and location_id not in reach:
        raise DunningViewRefused(f"--location: unknown location {location_id}")
    with Session(engine) as session:
        if location_id is not None and session.get(Location, location_id) is None:
            raise DunningViewRefused(f"--location: unknown location {location_id}")
        query = select(Subscription, Client, HealthPlan, Location).where(
            col(Subscription.status).in_(IN_DUNNING),
            Client.id == Subscription.client_id,
            HealthPlan.id == Subscription.plan_id,
            Location.id == Subscription.location_id,
        )
        if location_id is not None:
            query = query.where(Subscription.location_id == location_id)
        if reach is not None:
            query = query.where(col(Subscription.location_id).in_(reach))
        found = session.exec(query.order_by(col(Subscription.location_id), col(Client.name), col(Subscription.id))).all()
        now = datetime.now(UTC)
        return [_row(session, sub, client, plan, location, now) for sub, client, plan, location in found]


def _row(session: Session, sub: Subscription, client: Client, plan: HealthPlan, location: Location, now: datetime) -> DunningRow:
    invoice = session.exec(
        select(Invoice).where(Invoice.subscription_id == sub.id, Invoice.status == InvoiceStatus.OPEN).order_by(col(Invoice.due_at), col(Invoice.created_at))
    ).first()
    last = declined = None
    if invoice is not None:
        attempts = select(Payment).where(Payment.invoice_id == invoice.id).order_by(col(Payment.attempt).desc(), col(Payment.created_at).desc())
        last = session.exec(attempts).first()
        declined = session.exec(attempts.where(col(Payment.decline_reason).is_not(None))).first()
    return DunningRow(
        subscription_id=sub.id,
        location_id=sub.location_id,
        timezone=location.timezone,
        client_id=client.id,
        client_name=client.name,
        plan_name=plan.name,
        status=sub.status,
        invoice_id=invoice.id if invoice else None,
        owed_cents=(invoice.total_cents - invoice.paid_cents) if invoice else 0,
        attempts=last.attempt if last else 0,
        last_decline_reason=declined.decline_reason if declined else None,
        last_decline_class=declined.decline_class if declined else None,
        last_attempt_at=(last.attempted_at or last.created_at) if last else None,
        next_retry_at=_next_retry(sub, plan, location, invoice, last, declined, now),
        card=_card(session, sub.card_id),
        why=_last_decision(session, sub.id),
    )


def _next_retry(
    sub: Subscription, plan: HealthPlan, location: Location, invoice: Invoice | None, last: Payment | None, declined: Payment | None, now: datetime
) -> datetime | None:
    """When the workflow's schedule retries next; None when it waits for a new card or a person."""
    if sub.status != SubscriptionStatus.PAST_DUE or invoice is None or invoice.due_at is None or last is None or declined is None:
        return None
    schedule = dunning.from_plan_json(plan.dunning, interval_months=plan.interval_months)
    step = dunning.next_step(
        schedule, due_at=invoice.due_at, attempts_made=last.attempt, last_decline_class=_decline_class(declined), tz=location.timezone, now=now
    )
    return step.retry_at if step.kind == dunning.RETRY_AT else None


def _decline_class(payment: Payment) -> str | None:
    return payment.decline_class if payment.decline_class in (dunning.SOFT, dunning.HARD) else None


def _card(session: Session, card_id: str | None) -> str:
    """The card on file as people read it: brand, last four, expiry; never more."""
    card = session.get(SavedCard, card_id) if card_id else None
    if card is None:
        return "none"
    state = " (disabled)" if card.disabled else ""
    return f"{card.brand} ****{card.masked_number[-4:]} exp {card.exp_month:02d}/{card.exp_year % 100:02d}{state}"


def _last_decision(session: Session, subscription_id: str) -> str:
    """The workflow's own words for its last status decision, from the outbox."""
    event = session.exec(select(OutboxEvent).where(OutboxEvent.stream == subscription_stream(subscription_id)).order_by(col(OutboxEvent.seq).desc())).first()
    if event is None:
        return ""
    detail = str(event.payload.get("detail", "")) if isinstance(event.payload, dict) else ""
    return f"{event.type}: {detail}" if detail else event.type
