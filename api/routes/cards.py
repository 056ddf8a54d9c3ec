"""Saved cards of a client, over their life: add, list, set the default, remove, and the cards that
expire before their subscription's next charge.

A card is added by its Gravity reference (the `uniqueTransId` of the approved tokenization, which the
billing system got from Gravity's hosted fields or terminal), never by number: no field accepts a
card number or security code. The rules live in `operations.cards`; their refusals are answered by
`api.errors.from_refusal`, like every operation's.
Whether saved cards are shown at all follows the location's "allow Gravity payment for recurring
payment" setting.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from api import examples as ex
from api.deps import Runtime, current_caller, idempotency_key, runtime
from api.errors import ERRORS, ErrorBody, refusals
from api.fields import ID_PATTERN, MAX_ID_LENGTH, CleanText, Count, Flag, PathId, QueryDay
from foundation.scopes import Caller
from models.clinic import SavedCard
from operations import cards as card_ops
from operations.audit import Subject, record_now

router = APIRouter(tags=["saved cards"], responses=ERRORS)

UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorBody, "description": "Gravity could not be asked about the card now; nothing was saved (error: unavailable)"}
}


class CardIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=ex.examples(ex.CARD_IN))
    gravity_ref: CleanText = Field(
        min_length=8, max_length=128, description="Gravity's uniqueTransId of the tokenization (or of the terminal sale that kept the card)"
    )
    external_transaction_id: CleanText = Field(
        min_length=1,
        max_length=128,
        description="The externalTransactionId the tokenization (or sale) was sent with: the key Gravity looks it up by, to check the reference",
    )
    masked_number: str | None = Field(
        default=None, pattern=r"^[*Xx]{4,15}[0-9]{4}$", description="As Gravity masks it: ************1111 (optional: Gravity's answer is saved)"
    )
    brand: str | None = Field(default=None, pattern=r"^(VS|MC|AX|DS)$", description="Optional: Gravity's answer is saved")
    exp_month: Count | None = Field(default=None, ge=1, le=12, description="Optional: Gravity's answer is saved")
    exp_year: Count | None = Field(default=None, ge=2000, le=2099, description="Optional: Gravity's answer is saved")
    fingerprint: CleanText | None = Field(default=None, min_length=1, max_length=128)
    is_default: Flag | None = Field(default=None, description="Default card for enrollments (unset: default if the client has none)")


class CardOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra=ex.examples(ex.CARD))
    id: str
    client_id: str
    masked_number: str
    brand: str
    exp_month: int
    exp_year: int
    is_default: bool
    disabled: bool


class CardList(BaseModel):
    model_config = ConfigDict(json_schema_extra=ex.examples(ex.CARD_LIST))
    visible: bool = Field(description="False when the location does not allow Gravity payment for recurring payments")
    reason: str | None = None
    cards: list[CardOut]


class ExpiringCardOut(BaseModel):
    card: CardOut
    subscription_id: str
    next_due_date: date = Field(description="The subscription's next charge, in the location's time zone; the card expires before it")


class ExpiringCards(BaseModel):
    model_config = ConfigDict(json_schema_extra=ex.examples(ex.EXPIRING_CARDS))
    cards: list[ExpiringCardOut]


@router.get("/clients/{client_id}/cards", response_model=CardList)
def list_cards(client_id: PathId, rt: Runtime = Depends(runtime), caller: Caller = Depends(current_caller)) -> CardList:
    listing = card_ops.list_cards(rt.engine, client_id, reach=caller.reach)
    return CardList(visible=listing.visible, reason=listing.reason, cards=[CardOut.model_validate(row) for row in listing.cards])


@router.post(
    "/clients/{client_id}/cards",
    status_code=201,
    response_model=CardOut,
    dependencies=[Depends(idempotency_key)],
    responses={
        **refusals(
            refused="a gravity_ref Gravity never issued under external_transaction_id at the client's location, or not an approved saved card; "
            "a masked_number, brand, expiry or fingerprint that disagrees with Gravity's; the card has expired (exp_year)",
            conflict="this card is already saved for the client (gravity_ref)",
        ),
        **UNAVAILABLE,
    },
)
async def add_card(client_id: PathId, body: CardIn, rt: Runtime = Depends(runtime), caller: Caller = Depends(current_caller)) -> SavedCard:
    new = card_ops.NewCard(**body.model_dump())
    card = await card_ops.add_card(rt.engine, rt.gateways, client_id, new, reach=caller.reach)
    record_now(rt.engine, caller.actor, "card.add", Subject("card", card.id, card.location_id))
    return card


@router.post(
    "/clients/{client_id}/cards/{card_id}/default",
    response_model=CardOut,
    dependencies=[Depends(idempotency_key)],
    responses=refusals(refused="a disabled or expired card (card_id)"),
)
def set_default_card(client_id: PathId, card_id: PathId, rt: Runtime = Depends(runtime), caller: Caller = Depends(current_caller)) -> SavedCard:
    """Make the card the client's default: enrollments that name no card charge it."""
    card = card_ops.set_default(rt.engine, client_id, card_id, reach=caller.reach)
    record_now(rt.engine, caller.actor, "card.set_default", Subject("card", card.id, card.location_id))
    return card


@router.delete(
    "/clients/{client_id}/cards/{card_id}",
    response_model=CardOut,
    responses=refusals(conflict="a live subscription still charges the card (card_id): change its card first"),
)
def remove_card(client_id: PathId, card_id: PathId, rt: Runtime = Depends(runtime), caller: Caller = Depends(current_caller)) -> SavedCard:
    """Disable the card (kept for the books, never charged again); removing it twice is the same."""
    card = card_ops.remove_card(rt.engine, client_id, card_id, reach=caller.reach)
    record_now(rt.engine, caller.actor, "card.remove", Subject("card", card.id, card.location_id))
    return card


@router.get("/cards/expiring", response_model=ExpiringCards)
def expiring_cards(
    location_id: str | None = Query(default=None, min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN, description="Only this location's subscriptions"),
    before: QueryDay | None = Query(default=None, description="Only next charges due before this date (YYYY-MM-DD)"),
    rt: Runtime = Depends(runtime),
    caller: Caller = Depends(current_caller),
) -> ExpiringCards:
    """Cards that expire before the next charge of a live subscription they pay for, soonest charge first."""
    found = card_ops.expiring_cards(rt.engine, location_id=location_id, before=before, reach=caller.reach)
    return ExpiringCards(
        cards=[ExpiringCardOut(card=CardOut.model_validate(item.card), subscription_id=item.subscription_id, next_due_date=item.next_due_on) for item in found]
    )
