"""Clinic locations: their settings (time zone, charge time, "allow Gravity payment for recurring
payment") and their counter terminals."""

from __future__ import annotations

from datetime import time

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from api.deps import Runtime, idempotency_key, runtime
from api.errors import ERRORS, conflict, not_found
from foundation.ids import new_id
from models.clinic import Location, Terminal
from models.db import session_scope
from operations.subscriptions import set_recurring_allowed
from workflows.calendar import validate_tz

router = APIRouter(tags=["locations"], responses=ERRORS)


class LocationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")
    name: str = Field(min_length=1, max_length=200)
    timezone: str = Field(description="IANA zone, e.g. America/Chicago")
    gravity_oid: str = Field(min_length=1, max_length=32, pattern=r"^[0-9]+$", description="Gravity merchant OID")
    allow_recurring_gravity: bool = True
    charge_time: time = Field(default=time(9, 0), description="Local time of day charges run (HH:MM)")

    @field_validator("timezone")
    @classmethod
    def _iana(cls, value: str) -> str:
        validate_tz(value)
        return value


class LocationSettingsIn(BaseModel):
    """Only what is sent changes. `charge_time` applies to subscriptions enrolled afterwards."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    charge_time: time | None = None
    allow_recurring_gravity: bool | None = None


class LocationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    name: str
    timezone: str
    gravity_oid: str
    allow_recurring_gravity: bool
    charge_time: time


class LocationSettingsOut(LocationOut):
    subscriptions_notified: int = Field(description="Live subscriptions told that recurring charging is allowed again")


class TerminalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    device_name: str = Field(min_length=1, max_length=100, description="The device name Gravity knows the terminal by")
    label: str = Field(default="", max_length=200)


class TerminalOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    location_id: str
    device_name: str
    label: str


def get_location(session: Session, location_id: str) -> Location:
    location = session.get(Location, location_id)
    if location is None:
        raise not_found("location_id", f"unknown location {location_id}")
    return location


@router.post("/locations", status_code=201, response_model=LocationOut, dependencies=[Depends(idempotency_key)])
def create_location(body: LocationIn, rt: Runtime = Depends(runtime)) -> Location:
    location = Location(
        id=body.id or new_id("loc"),
        name=body.name,
        timezone=body.timezone,
        gravity_oid=body.gravity_oid,
        allow_recurring_gravity=body.allow_recurring_gravity,
        charge_time=body.charge_time,
    )
    try:
        with session_scope(rt.engine) as session:
            session.add(location)
    except IntegrityError:
        raise conflict("id", f"location {location.id} already exists") from None
    return location


@router.get("/locations/{location_id}", response_model=LocationOut)
def read_location(location_id: str, rt: Runtime = Depends(runtime)) -> Location:
    with Session(rt.engine) as session:
        return get_location(session, location_id)


@router.patch("/locations/{location_id}/settings", response_model=LocationSettingsOut)
async def update_settings(location_id: str, body: LocationSettingsIn, rt: Runtime = Depends(runtime)) -> LocationSettingsOut:
    with session_scope(rt.engine) as session:
        location = get_location(session, location_id)
        if body.name is not None:
            location.name = body.name
        if body.charge_time is not None:
            location.charge_time = body.charge_time
        session.add(location)
        changes_recurring = body.allow_recurring_gravity is not None and body.allow_recurring_gravity != location.allow_recurring_gravity
    notified = 0
    if changes_recurring:
        assert body.allow_recurring_gravity is not None
        notified = await set_recurring_allowed(rt.temporal, rt.engine, location_id, body.allow_recurring_gravity, task_queue=rt.task_queue)
    with Session(rt.engine) as session:
        location = get_location(session, location_id)
        return LocationSettingsOut(**LocationOut.model_validate(location).model_dump(), subscriptions_notified=notified)


@router.get("/locations/{location_id}/terminals", response_model=list[TerminalOut])
def list_terminals(location_id: str, rt: Runtime = Depends(runtime)) -> list[Terminal]:
    with Session(rt.engine) as session:
        get_location(session, location_id)
        return list(session.exec(select(Terminal).where(Terminal.location_id == location_id).order_by(Terminal.device_name)))


@router.post("/locations/{location_id}/terminals", status_code=201, response_model=TerminalOut, dependencies=[Depends(idempotency_key)])
def add_terminal(location_id: str, body: TerminalIn, rt: Runtime = Depends(runtime)) -> Terminal:
    terminal = Terminal(id=new_id("term"), location_id=location_id, device_name=body.device_name, label=body.label)
    try:
        with session_scope(rt.engine) as session:
            get_location(session, location_id)
            session.add(terminal)
    except IntegrityError:
        raise conflict("device_name", f"location {location_id} already has a terminal named {body.device_name}") from None
    return terminal
