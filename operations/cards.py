"""Saved cards over their life, one home for every card rule: which card may be charged, adding a
card (checked at Gravity first), listing, the default, removing, and the cards expiring too soon.

Why one module: the API, the CLI, enrollment and the change-card activity all ask "may this card be
charged?", and a rule written once reads the same from each of them. Each refusal names its field
and changes nothing. Queries take `reach`, the locations the caller may see (None: every location).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import TypeVar

import pendulum
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from books.cards import card_expired_on, recurring_not_allowed
from foundation.card_numbers import LOOKS_LIKE_A_CARD_NUMBER, holds_card_number
from foundation.ids import new_id
from foundation.statuses import FINAL_SUBSCRIPTION_STATUSES
from gravity.directory import GatewayDirectory
from gravity.errors import GravityError
from gravity.results import TransactionResult
from models.clinic import Client, Location, SavedCard
from models.subscriptions import Subscription
from operations.refusals import Refusal, conflict, not_found, unavailable

#: The transactions whose uniqueTransId Gravity takes as a saved card's token: a card saved without a
#: charge, or a sale at a terminal that kept the card.
CARD_ON_FILE_TYPES = ("CreditSaveCard", "CreditSale")


T = TypeVar("T", str, int)


# ---------------------------------------------------------------- which card may be charged


def usable_card(card: SavedCard | None, card_id: str, client_id: str, day: date | None) -> SavedCard:
    """The card, if `client_id` may be charged on it on `day` (None: expiry not checked); else
    a `Refusal` naming card_id, in the words enrollment, the API, the CLI and the activity share."""
    if card is None:
        raise Refusal("card_id", f"unknown card {card_id}")
    if card.client_id != client_id:
        raise Refusal("card_id", f"card {card_id} belongs to another client")
    if card.disabled:
        raise Refusal("card_id", f"card {card_id} is disabled")
    if day is not None and card_expired_on(card.exp_month, card.exp_year, day):
        raise Refusal("card_id", f"card {card_id} expired {card.exp_month:02d}/{card.exp_year}")
    return card


def default_card(session: Session, client_id: str) -> SavedCard | None:
    """The client's default card, if it has one that is not disabled."""
    return session.exec(select(SavedCard).where(SavedCard.client_id == client_id, col(SavedCard.is_default), col(SavedCard.disabled).is_(False))).first()


def card_to_charge(session: Session, card_id: str | None, client_id: str, day: date | None) -> SavedCard:
    """The named card, or the client's default when none is named, checked by `usable_card`."""
    if card_id:
        return usable_card(session.get(SavedCard, card_id), card_id, client_id, day)
    card = default_card(session, client_id)
    if card is None:
        raise Refusal("card_id", f"client {client_id} has no default saved card; name one")
    return usable_card(card, card.id, client_id, day)


# ---------------------------------------------------------------- adding a card


@dataclass(frozen=True)
class NewCard:
    """What the billing system says about a card Gravity saved; the gateway's answer wins."""

    gravity_ref: str
    external_transaction_id: str
    masked_number: str | None = None
    brand: str | None = None
    exp_month: int | None = None
    exp_year: int | None = None
    fingerprint: str | None = None
    is_default: bool | None = None


@dataclass(frozen=True)
class CardFacts:
    """The card as Gravity reported it at lookup."""

    masked_number: str
    brand: str
    exp_month: int
    exp_year: int
    fingerprint: str


async def add_card(engine: Engine, gateways: GatewayDirectory, client_id: str, new: NewCard, *, reach: frozenset[str] | None = None) -> SavedCard:
    """Save a card for the client after Gravity confirms it issued `gravity_ref` as an approved card
    on file under `external_transaction_id` (its only lookup key); the masked number, brand, expiry
    and fingerprint saved are Gravity's."""
    for field, value in (("gravity_ref", new.gravity_ref), ("external_transaction_id", new.external_transaction_id), ("fingerprint", new.fingerprint)):
        if value is not None and holds_card_number(value):
            raise Refusal(field, LOOKS_LIKE_A_CARD_NUMBER)
    with Session(engine) as session:
        client = _client(session, client_id, reach)
        location = session.get(Location, client.location_id)
        assert location is not None
        oid, timezone = location.gravity_oid, location.timezone
    result = await _looked_up(gateways, oid, new)
    facts = card_facts(result, new)
    if card_expired_on(facts.exp_month, facts.exp_year, pendulum.now(timezone).date()):
        raise Refusal("exp_year", f"the card expired {facts.exp_month:02d}/{facts.exp_year}")
    try:
        with Session(engine, expire_on_commit=False) as session:
            current = default_card(session, client_id)
            make_default = new.is_default if new.is_default is not None else current is None
            if make_default and current is not None:
                current.is_default = False
                session.add(current)
                session.flush()
            card = SavedCard(
                id=new_id("card"),
                client_id=client_id,
                location_id=client.location_id,
                gravity_ref=new.gravity_ref,
                masked_number=facts.masked_number,
                brand=facts.brand,
                exp_month=facts.exp_month,
                exp_year=facts.exp_year,
                fingerprint=facts.fingerprint,
                is_default=make_default,
            )
            session.add(card)
            session.commit()
    except IntegrityError:
        raise conflict("gravity_ref", "this card is already saved for the client") from None
    return card


async def _looked_up(gateways: GatewayDirectory, oid: str, new: NewCard) -> TransactionResult:
    """Gravity's record of the transaction that saved the card, or a `Refusal` naming gravity_ref."""
    try:
        gateway = gateways.for_oid(oid)
    except LookupError:
        raise Refusal("gravity_ref", f"no Gravity credential is configured for the location's merchant OID {oid}") from None
    try:
        result = await gateway.lookup(new.external_transaction_id)
    except GravityError as error:
        raise unavailable("gravity_ref", f"Gravity could not be asked about this card now ({type(error).__name__}); retry") from None
    never_issued = "Gravity never issued this card reference under external_transaction_id at this location"
    if result is None or result.unique_trans_id != new.gravity_ref:
        raise Refusal("gravity_ref", never_issued)
    if not result.approved or str(result.transaction_type) not in CARD_ON_FILE_TYPES:
        raise Refusal("gravity_ref", f"Gravity's transaction is a {result.transaction_type} {result.outcome}, not an approved saved card")
    return result


def card_facts(result: TransactionResult, new: NewCard) -> CardFacts:
    """The card's facts from Gravity's answer; a body value that disagrees is refused naming its field,
    and the body fills only what Gravity left out."""
    expiry = result.expiry_mmyy if result.expiry_mmyy and len(result.expiry_mmyy) == 4 and result.expiry_mmyy.isdigit() else None
    gateway_month = int(expiry[:2]) if expiry else None
    gateway_year = 2000 + int(expiry[2:]) if expiry else None
    return CardFacts(
        masked_number=_agreed("masked_number", result.masked_account, new.masked_number),
        brand=_agreed("brand", result.card_brand, new.brand),
        exp_month=_agreed("exp_month", gateway_month, new.exp_month),
        exp_year=_agreed("exp_year", gateway_year, new.exp_year),
        fingerprint=_agreed("fingerprint", result.fingerprint, new.fingerprint, fallback=new.gravity_ref),
    )


def _agreed(field: str, gateway: T | None, sent: T | None, *, fallback: T | None = None) -> T:
    if gateway is not None and gateway != "":
        if sent is not None and sent != gateway:
            raise Refusal(field, f"does not match the card Gravity saved ({gateway})" if field != "fingerprint" else "does not match the card Gravity saved")
        return gateway
    if sent is not None:
        return sent
    if fallback is not None:
        return fallback
    raise Refusal(field, "Gravity did not report it for this card; send it")


# ---------------------------------------------------------------- a client's cards


@dataclass(frozen=True)
class CardListing:
    visible: bool
    reason: str | None
    cards: Sequence[SavedCard]


def list_cards(engine: Engine, client_id: str, *, reach: frozenset[str] | None = None) -> CardListing:
    """The client's cards, oldest first; none when the location does not allow Gravity payment for
    recurring payments (the setting hides saved cards)."""
    with Session(engine) as session:
        client = _client(session, client_id, reach)
        location = session.get(Location, client.location_id)
        assert location is not None
        if not location.allow_recurring_gravity:
            return CardListing(False, recurring_not_allowed(location.id), [])
        rows = session.exec(select(SavedCard).where(SavedCard.client_id == client_id).order_by(col(SavedCard.created_at), col(SavedCard.id))).all()
        return CardListing(True, None, rows)


def set_default(engine: Engine, client_id: str, card_id: str, *, reach: frozenset[str] | None = None) -> SavedCard:
    """Make the card the client's default (enrollments without a named card charge it)."""
    with Session(engine, expire_on_commit=False) as session:
        client = _client(session, client_id, reach)
        card = _clients_card(session, client.id, card_id)
        location = session.get(Location, client.location_id)
        assert location is not None
        usable_card(card, card_id, client.id, pendulum.now(location.timezone).date())
        if card.is_default:
            return card
        current = default_card(session, client.id)
        if current is not None:
            current.is_default = False
            session.add(current)
            session.flush()
        card.is_default = True
        session.add(card)
        session.commit()
        return card


def remove_card(engine: Engine, client_id: str, card_id: str, *, reach: frozenset[str] | None = None) -> SavedCard:
    """Disable the card (it is kept for the books); refused while a live subscription still charges
    it, until another card takes its place there (change-card)."""
    with Session(engine, expire_on_commit=False) as session:
        client = _client(session, client_id, reach)
        card = _clients_card(session, client.id, card_id, lock=True)
        charging = charged_by(session, card.id)
        if charging:
            raise conflict("card_id", f"card {card_id} is charged by live subscription {', '.join(charging)}; change its card first")
        if card.disabled and not card.is_default:
            return card
        card.disabled = True
        card.is_default = False
        session.add(card)
        session.commit()
        return card


def charged_by(session: Session, card_id: str) -> list[str]:
    """The live subscriptions (neither cancelled nor ended) whose row names this card."""
    return list(
        session.exec(
            select(Subscription.id)
            .where(Subscription.card_id == card_id, col(Subscription.status).not_in(FINAL_SUBSCRIPTION_STATUSES))
            .order_by(col(Subscription.id))
        )
    )


# ---------------------------------------------------------------- cards expiring too soon


@dataclass(frozen=True)
class ExpiringCard:
    card: SavedCard
    subscription_id: str
    next_due_on: date


def expiring_cards(engine: Engine, *, location_id: str | None = None, before: date | None = None, reach: frozenset[str] | None = None) -> list[ExpiringCard]:
    """Cards that expire before the next charge of a live subscription they pay for, by next due
    date (only charges due before `before`, when given), so someone asks the client for a new card."""
    with Session(engine) as session:
        query = (
            select(SavedCard, Subscription, Location.timezone)
            .join(Subscription, col(Subscription.card_id) == SavedCard.id)
            .join(Location, col(Location.id) == Subscription.location_id)
            .where(col(Subscription.status).not_in(FINAL_SUBSCRIPTION_STATUSES), col(Subscription.next_due_at).is_not(None))
            .order_by(col(Subscription.next_due_at), col(Subscription.id))
        )
        if location_id is not None:
            query = query.where(Subscription.location_id == location_id)
        if reach is not None:
            query = query.where(col(Subscription.location_id).in_(reach))
        found = []
        for card, sub, timezone in session.exec(query):
            assert sub.next_due_at is not None
            due_on = pendulum.instance(sub.next_due_at).in_timezone(timezone).date()
            if before is not None and due_on >= before:
                continue
            if card_expired_on(card.exp_month, card.exp_year, due_on):
                found.append(ExpiringCard(card, sub.id, due_on))
        return found


# ---------------------------------------------------------------- lookups


def _client(session: Session, client_id: str, reach: frozenset[str] | None) -> Client:
    client = session.get(Client, client_id)
    if client is None or (reach is not None and client.location_id not in reach):
        raise not_found("client_id", f"unknown client {client_id}")
    return client


def _clients_card(session: Session, client_id: str, card_id: str, *, lock: bool = False) -> SavedCard:
    query = select(SavedCard).where(SavedCard.id == card_id, SavedCard.client_id == client_id)
    card = session.exec(query.with_for_update() if lock else query).first()
    if card is None:
        raise not_found("card_id", f"unknown card {card_id} for client {client_id}")
    return card
