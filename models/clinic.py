"""Who the engine bills: clinic locations, their terminals, clients, pets and saved cards.

A saved card keeps only what Gravity gives back: the `uniqueTransId` of an approved transaction
(the card-on-file reference), the masked number, brand, expiry and fingerprint. Never a card number
or security code.
"""

from __future__ import annotations

from datetime import datetime, time

from sqlalchemy import BigInteger, CheckConstraint, Column, Index, SmallInteger, Text, Time, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from models.columns import fk, tz

DEFAULT_MAX_INVOICE_CENTS = 5_000_000  # $50,000
DEFAULT_MAX_INVOICE_LINES = 50


class Location(SQLModel, table=True):
    """One clinic location = one Gravity merchant account (OID) in one IANA time zone."""

    __tablename__ = "location"
    __table_args__ = (
        CheckConstraint("overpayment_policy IN ('give_back', 'keep_as_credit')", name="ck_location_overpayment_policy"),
        CheckConstraint("max_invoice_cents > 0", name="ck_location_max_invoice_cents_positive"),
        CheckConstraint("max_invoice_lines > 0", name="ck_location_max_invoice_lines_positive"),
    )
    id: str = Field(primary_key=True)
    name: str
    timezone: str = Field(description="IANA zone, e.g. America/Chicago")
    gravity_oid: str = Field(index=True)
    allow_recurring_gravity: bool = Field(
        default=True, description='"Allow Gravity payment for recurring payment": gates card-on-file charges and showing saved cards.'
    )
    charge_time: time = Field(default=time(9, 0), sa_column=Column("charge_time", Time, nullable=False, server_default="09:00"))
    # What happens to money the gateway approved that no invoice needs (an approval on an invoice
    # already paid or void): "give_back" (void or refund it) or "keep_as_credit" (client credit).
    overpayment_policy: str = Field(default="give_back", sa_column=Column("overpayment_policy", Text, nullable=False, server_default="give_back"))
    # The largest counter invoice (and so any one payment, deposit or refund) and the most lines the
    # API takes for this location: a typo of dollars for cents, or a runaway client, is refused.
    max_invoice_cents: int = Field(
        default=DEFAULT_MAX_INVOICE_CENTS,
        sa_column=Column("max_invoice_cents", BigInteger, nullable=False, server_default=str(DEFAULT_MAX_INVOICE_CENTS)),
    )
    max_invoice_lines: int = Field(
        default=DEFAULT_MAX_INVOICE_LINES,
        sa_column=Column("max_invoice_lines", SmallInteger, nullable=False, server_default=str(DEFAULT_MAX_INVOICE_LINES)),
    )
    created_at: datetime | None = Field(default=None, sa_column=tz("created_at", now_default=True))


class Terminal(SQLModel, table=True):
    """A counter card terminal, known to Gravity by its device name."""

    __tablename__ = "terminal"
    __table_args__ = (UniqueConstraint("location_id", "device_name", name="uq_terminal_device"),)
    id: str = Field(primary_key=True)
    location_id: str = Field(sa_column=fk("location_id", "location.id"))
    device_name: str
    label: str = ""


class Client(SQLModel, table=True):
    """A pet owner, known at one location (locations never see each other's clients)."""

    __tablename__ = "client"
    id: str = Field(primary_key=True)
    location_id: str = Field(sa_column=fk("location_id", "location.id"))
    name: str
    email: str | None = None
    created_at: datetime | None = Field(default=None, sa_column=tz("created_at", now_default=True))


class Pet(SQLModel, table=True):
    __tablename__ = "pet"
    id: str = Field(primary_key=True)
    client_id: str = Field(sa_column=fk("client_id", "client.id"))
    name: str
    species: str = "dog"


class SavedCard(SQLModel, table=True):
    """A card on file. `gravity_ref` is Gravity's uniqueTransId used as the card's token."""

    __tablename__ = "saved_card"
    __table_args__ = (
        Index("uq_saved_card_one_default", "client_id", unique=True, postgresql_where=text("is_default AND NOT disabled")),
        UniqueConstraint("client_id", "fingerprint", name="uq_saved_card_fingerprint"),
    )
    id: str = Field(primary_key=True)
    client_id: str = Field(sa_column=fk("client_id", "client.id"))
    location_id: str = Field(sa_column=fk("location_id", "location.id"))
    gravity_ref: str = Field(sa_column=Column("gravity_ref", Text, nullable=False, unique=True))
    masked_number: str = Field(description="************1111, as Gravity masks it")
    brand: str = Field(description="VS, MC, AX or DS")
    exp_month: int = Field(sa_column=Column("exp_month", SmallInteger, nullable=False))
    exp_year: int = Field(sa_column=Column("exp_year", SmallInteger, nullable=False))
    fingerprint: str
    is_default: bool = False
    disabled: bool = False
    created_at: datetime | None = Field(default=None, sa_column=tz("created_at", now_default=True))
