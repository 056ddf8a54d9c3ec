"""Pets of a client (a subscription is for one pet)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from api import examples as ex
from api.deps import Runtime, current_caller, idempotency_key, runtime
from api.errors import ERRORS, conflict, refusals
from api.fields import CleanText, Id, PathId
from api.reach import load_reached
from api.routes.clients import get_client
from foundation.ids import new_id
from foundation.scopes import Caller
from models.clinic import Pet
from operations.audit import Subject, record

router = APIRouter(tags=["pets"], responses=ERRORS)


class PetIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=ex.examples(ex.PET_IN))
    id: Id | None = None
    name: CleanText = Field(min_length=1, max_length=200)
    species: CleanText = Field(default="dog", min_length=1, max_length=50)


class PetOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra=ex.examples(ex.PET))
    id: str
    client_id: str
    name: str
    species: str


@router.post(
    "/clients/{client_id}/pets",
    status_code=201,
    response_model=PetOut,
    dependencies=[Depends(idempotency_key)],
    responses=refusals(conflict="a pet with this id already exists"),
)
def add_pet(client_id: PathId, body: PetIn, rt: Runtime = Depends(runtime), caller: Caller = Depends(current_caller)) -> Pet:
    pet = Pet(id=body.id or new_id("pet"), client_id=client_id, name=body.name, species=body.species)
    try:
        with Session(rt.engine, expire_on_commit=False) as session:
            owner = get_client(session, client_id, caller)
            session.add(pet)
            session.flush()
            record(session, caller.actor, "pet.create", Subject("pet", pet.id, owner.location_id))
            session.commit()
    except IntegrityError:
        raise conflict("id", f"pet {pet.id} already exists") from None
    return pet


@router.get("/clients/{client_id}/pets", response_model=list[PetOut])
def list_pets(client_id: PathId, rt: Runtime = Depends(runtime), caller: Caller = Depends(current_caller)) -> list[Pet]:
    with Session(rt.engine) as session:
        get_client(session, client_id, caller)
        return list(session.exec(select(Pet).where(Pet.client_id == client_id).order_by(Pet.name)))


@router.get("/pets/{pet_id}", response_model=PetOut)
def read_pet(pet_id: PathId, rt: Runtime = Depends(runtime), caller: Caller = Depends(current_caller)) -> Pet:
    with Session(rt.engine) as session:
        return load_reached(session, caller, Pet, pet_id, "pet_id", "pet")
