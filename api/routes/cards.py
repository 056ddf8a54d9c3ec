"""Saved cards of a client.

A card is added by its Gravity reference (the `uniqueTransId` of the approved tokenization, which the
billing system got from Gravity's hosted fields or terminal), never by number: no field accepts a
card number or security code. Whether saved cards are shown at all follows the location's "allow
Gravity payment for recurring payment" setting.
"""

from __future__ import annotations

import re

import pendulum
from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from api.deps import Runtime, current_caller, idempotency_key, runtime
from api.errors import ERRORS, conflict, refusals, refused
from api.fields import CleanText, Count, Flag, PathId
from api.routes.clients import get_client
from books.cards import card_expired_on
from foundation.ids import new_id
from foundation.scopes import Caller
from models.clinic import Location, SavedCard
from operations.audit import Subject, record

router = APIRouter(tags=["saved cards"], responses=ERRORS)

_LOOKS_LIKE_PAN = re.compile(r"^[0-9 \-]{12,23}$")


class CardIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    gravity_ref: CleanText = Field(min_length=8, max_length=128, description="Gravity's uniqueTransId of the tokenization")
    masked_number: str = Field(pattern=r"^[*Xx]{4,15}[0-9]{4}$", description="As Gravity masks it: ************1111")
    brand: str = Field(pattern=r"^(VS|MC|AX|DS)$")
    exp_month: Count = Field(ge=1, le=12)
    exp_year: Count = Field(ge=2000, le=2099)
    fingerprint: CleanText | None = Field(default=None, min_length=1, max_length=128)
    is_default: Flag | None = Field(default=None, description="Default card for enrollments (unset: default if the client has none)")

    @field_validator("gravity_ref")
    @classmethod
    def _not_a_card_number(cls, value: str) -> str:
        if _LOOKS_LIKE_PAN.match(value):
            raise ValueError("must be Gravity's card reference (uniqueTransId), never a card number")
        return value


class CardOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    client_id: str
    masked_number: str
    brand: str
    exp_month: int
    exp_year: int
    is_default: bool
    disabled: bool


class CardList(BaseModel):
    visible: bool = Field(description="False when the location does not allow Gravity payment for recurring payments")
    reason: str | None = None
    cards: list[CardOut]


@router.get("/clients/{client_id}/cards", response_model=CardList)
def list_cards(client_id: PathId, rt: Runtime = Depends(runtime), caller: Caller = Depends(current_caller)) -> CardList:
    with Session(rt.engine) as session:
        client = get_client(session, client_id, caller)
        location = session.get(Location, client.location_id)
        assert location is not None
        if not location.allow_recurring_gravity:
            return CardList(visible=False, reason=f"location {location.id} does not allow Gravity payment for recurring payments", cards=[])
        rows = session.exec(select(SavedCard).where(SavedCard.client_id == client_id).order_by(SavedCard.created_at, SavedCard.id))
        return CardList(visible=True, cards=[CardOut.model_validate(row) for row in rows])


@router.post(
    "/clients/{client_id}/cards",
    status_code=201,
    response_model=CardOut,
    dependencies=[Depends(idempotency_key)],
    responses=refusals(refused="the card has expired (exp_year)", conflict="this card is already saved for the client (gravity_ref)"),
)
def add_card(client_id: PathId, body: CardIn, rt: Runtime = Depends(runtime), caller: Caller = Depends(current_caller)) -> SavedCard:
    try:
        with Session(rt.engine, expire_on_commit=False) as session:
            client = get_client(session, client_id, caller)
            location = session.get(Location, client.location_id)
            assert location is not None
            today = pendulum.now(location.timezone).date()
            if card_expired_on(body.exp_month, body.exp_year, today):
                raise refused("exp_year", f"the card expired {body.exp_month:02d}/{body.exp_year}")
            current = session.exec(
                select(SavedCard).where(SavedCard.client_id == client_id, SavedCard.is_default, SavedCard.disabled == False)  # noqa: E712
            ).first()
            make_default = body.is_default if body.is_default is not None else current is None
            if make_default and current is not None:
                current.is_default = False
                session.add(current)
                session.flush()
            card = SavedCard(
                id=new_id("card"),
                client_id=client_id,
                location_id=client.location_id,
                gravity_ref=body.gravity_ref,
                masked_number=body.masked_number,
                brand=body.brand,
                exp_month=body.exp_month,
                exp_year=body.exp_year,
                fingerprint=body.fingerprint or body.gravity_ref,
                is_default=make_default,
            )
            session.add(card)
            session.flush()
            record(session, caller.actor, "card.add", Subject("card", card.id, card.location_id))
            session.commit()
    except IntegrityError:
        raise conflict("gravity_ref", "this card is already saved for the client") from None
    return card
