"""Clients (pet owners) of one location."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from api import examples as ex
from api.deps import Runtime, current_caller, idempotency_key, runtime
from api.errors import ERRORS, conflict, refusals, refused
from api.fields import CleanText, Email, Id, PathId
from api.reach import body_location_reached, load_reached
from foundation.ids import new_id
from foundation.scopes import Caller
from models.clinic import Client, Location
from operations.audit import Subject, record

router = APIRouter(tags=["clients"], responses=ERRORS)


class ClientIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=ex.examples(ex.CLIENT_IN))
    id: Id | None = None
    location_id: Id
    name: CleanText = Field(min_length=1, max_length=200)
    email: Email | None = Field(default=None, max_length=320)


class ClientOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra=ex.examples(ex.CLIENT))
    id: str
    location_id: str
    name: str
    email: str | None


def get_client(session: Session, client_id: str, caller: Caller) -> Client:
    """The client, or 404 when it is unknown or at a location the caller does not reach."""
    return load_reached(session, caller, Client, client_id, "client_id", "client")


@router.post(
    "/clients",
    status_code=201,
    response_model=ClientOut,
    dependencies=[Depends(idempotency_key)],
    responses=refusals(refused="unknown location_id", conflict="a client with this id already exists"),
)
def create_client(body: ClientIn, rt: Runtime = Depends(runtime), caller: Caller = Depends(current_caller)) -> Client:
    client = Client(id=body.id or new_id("cli"), location_id=body.location_id, name=body.name, email=body.email)
    body_location_reached(caller, body.location_id)
    try:
        with Session(rt.engine, expire_on_commit=False) as session:
            if session.get(Location, body.location_id) is None:
                raise refused("location_id", f"unknown location {body.location_id}")
            session.add(client)
            session.flush()
            record(session, caller.actor, "client.create", Subject("client", client.id, client.location_id))
            session.commit()
    except IntegrityError:
        raise conflict("id", f"client {client.id} already exists") from None
    return client


@router.get("/clients/{client_id}", response_model=ClientOut)
def read_client(client_id: PathId, rt: Runtime = Depends(runtime), caller: Caller = Depends(current_caller)) -> Client:
    with Session(rt.engine) as session:
        return get_client(session, client_id, caller)
