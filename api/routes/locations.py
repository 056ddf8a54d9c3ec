"""Clinic locations: their settings (time zone, charge time, "allow Gravity payment for recurring
payment") and their counter terminals."""

from __future__ import annotations

from datetime import time
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from api import examples as ex
from api.deps import Runtime, current_caller, idempotency_key, runtime
from api.errors import ERRORS, conflict, refusals
from api.fields import MAX_CENTS, MAX_LINES, CleanText, Count, Flag, Id, NoCardNumber, PathId, TimeOfDay, TimeOfDayOut, Timezone
from api.reach import load_reached, require_all_locations
from foundation.ids import new_id
from foundation.scopes import Caller
from models.clinic import DEFAULT_MAX_INVOICE_CENTS, DEFAULT_MAX_INVOICE_LINES, Location, Terminal
from models.db import session_scope
from operations.audit import Subject, record
from operations.subscriptions import set_recurring_allowed

router = APIRouter(tags=["locations"], responses=ERRORS)

MAX_INVOICE_CENTS_DOC = "The largest amount this location takes in one counter invoice, payment, deposit, refund or plan price, in cents"
MAX_INVOICE_LINES_DOC = "The most lines one counter invoice may have"


class LocationIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=ex.examples(ex.LOCATION_IN))
    id: Id | None = None
    name: CleanText = Field(min_length=1, max_length=200)
    timezone: Timezone = Field(description="IANA zone, e.g. America/Chicago")
    gravity_oid: Annotated[str, NoCardNumber] = Field(min_length=1, max_length=32, pattern=r"^[0-9]+$", description="Gravity merchant OID")
    allow_recurring_gravity: Flag = True
    charge_time: TimeOfDay = Field(default=time(9, 0), description="Local time of day charges run (HH:MM)")
    max_invoice_cents: Count = Field(default=DEFAULT_MAX_INVOICE_CENTS, ge=1, le=MAX_CENTS, description=MAX_INVOICE_CENTS_DOC)
    max_invoice_lines: Count = Field(default=DEFAULT_MAX_INVOICE_LINES, ge=1, le=MAX_LINES, description=MAX_INVOICE_LINES_DOC)


class LocationSettingsIn(BaseModel):
    """Only what is sent changes. `charge_time` applies to subscriptions enrolled afterwards."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=ex.examples(ex.LOCATION_SETTINGS_IN))
    name: CleanText | None = Field(default=None, min_length=1, max_length=200)
    charge_time: TimeOfDay | None = None
    allow_recurring_gravity: Flag | None = None
    max_invoice_cents: Count | None = Field(default=None, ge=1, le=MAX_CENTS, description=MAX_INVOICE_CENTS_DOC)
    max_invoice_lines: Count | None = Field(default=None, ge=1, le=MAX_LINES, description=MAX_INVOICE_LINES_DOC)


class LocationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra=ex.examples(ex.LOCATION))
    id: str
    name: str
    timezone: str
    gravity_oid: str
    allow_recurring_gravity: bool
    charge_time: TimeOfDayOut
    max_invoice_cents: int
    max_invoice_lines: int


class LocationSettingsOut(LocationOut):
    model_config = ConfigDict(json_schema_extra=ex.examples(ex.LOCATION_SETTINGS))
    subscriptions_notified: int = Field(description="Live subscriptions told that recurring charging is allowed again")


class TerminalIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=ex.examples(ex.TERMINAL_IN))
    device_name: CleanText = Field(min_length=1, max_length=100, description="The device name Gravity knows the terminal by")
    label: CleanText = Field(default="", max_length=200)


class TerminalOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra=ex.examples(ex.TERMINAL))
    id: str
    location_id: str
    device_name: str
    label: str


def get_location(session: Session, location_id: str, caller: Caller) -> Location:
    """The location, or 404 when it is unknown or the caller does not reach it."""
    return load_reached(session, caller, Location, location_id, "location_id", "location")


@router.post(
    "/locations",
    status_code=201,
    response_model=LocationOut,
    dependencies=[Depends(idempotency_key)],
    responses=refusals(conflict="a location with this id already exists"),
)
def create_location(body: LocationIn, rt: Runtime = Depends(runtime), caller: Caller = Depends(current_caller)) -> Location:
    require_all_locations(caller, "POST /locations")
    location = Location(
        id=body.id or new_id("loc"),
        name=body.name,
        timezone=body.timezone,
        gravity_oid=body.gravity_oid,
        allow_recurring_gravity=body.allow_recurring_gravity,
        charge_time=body.charge_time,
        max_invoice_cents=body.max_invoice_cents,
        max_invoice_lines=body.max_invoice_lines,
    )
    try:
        with session_scope(rt.engine) as session:
            session.add(location)
            session.flush()
            record(session, caller.actor, "location.create", Subject("location", location.id, location.id))
    except IntegrityError:
        raise conflict("id", f"location {location.id} already exists") from None
    return location


@router.get("/locations/{location_id}", response_model=LocationOut)
def read_location(location_id: PathId, rt: Runtime = Depends(runtime), caller: Caller = Depends(current_caller)) -> Location:
    with Session(rt.engine) as session:
        return get_location(session, location_id, caller)


@router.patch("/locations/{location_id}/settings", response_model=LocationSettingsOut)
async def update_settings(
    location_id: PathId, body: LocationSettingsIn, rt: Runtime = Depends(runtime), caller: Caller = Depends(current_caller)
) -> LocationSettingsOut:
    with session_scope(rt.engine) as session:
        location = get_location(session, location_id, caller)
        record(session, caller.actor, "location.settings", Subject("location", location_id, location_id))
        if body.name is not None:
            location.name = body.name
        if body.charge_time is not None:
            location.charge_time = body.charge_time
        if body.max_invoice_cents is not None:
            location.max_invoice_cents = body.max_invoice_cents
        if body.max_invoice_lines is not None:
            location.max_invoice_lines = body.max_invoice_lines
        session.add(location)
        changes_recurring = body.allow_recurring_gravity is not None and body.allow_recurring_gravity != location.allow_recurring_gravity
    notified = 0
    if changes_recurring:
        assert body.allow_recurring_gravity is not None
        notified = await set_recurring_allowed(rt.temporal, rt.engine, location_id, body.allow_recurring_gravity, task_queue=rt.task_queue)
    with Session(rt.engine) as session:
        location = get_location(session, location_id, caller)
        return LocationSettingsOut(**LocationOut.model_validate(location).model_dump(), subscriptions_notified=notified)


@router.get("/locations/{location_id}/terminals", response_model=list[TerminalOut])
def list_terminals(location_id: PathId, rt: Runtime = Depends(runtime), caller: Caller = Depends(current_caller)) -> list[Terminal]:
    with Session(rt.engine) as session:
        get_location(session, location_id, caller)
        return list(session.exec(select(Terminal).where(Terminal.location_id == location_id).order_by(Terminal.device_name)))


@router.post(
    "/locations/{location_id}/terminals",
    status_code=201,
    response_model=TerminalOut,
    dependencies=[Depends(idempotency_key)],
    responses=refusals(conflict="the location already has a terminal with this device name"),
)
def add_terminal(location_id: PathId, body: TerminalIn, rt: Runtime = Depends(runtime), caller: Caller = Depends(current_caller)) -> Terminal:
    terminal = Terminal(id=new_id("term"), location_id=location_id, device_name=body.device_name, label=body.label)
    try:
        with session_scope(rt.engine) as session:
            get_location(session, location_id, caller)
            session.add(terminal)
            session.flush()
            record(session, caller.actor, "terminal.add", Subject("terminal", terminal.id, location_id))
    except IntegrityError:
        raise conflict("device_name", f"location {location_id} already has a terminal named {body.device_name}") from None
    return terminal
