"""The field types every request model, path and query parameter of the API is built from.

Why one module: the rules that keep bad input out (clean text, ids of one shape, integers that are
integers, amounts under a ceiling) are stated once here, so each route states only its own limits
and the OpenAPI schema shows the same rules the validators apply.
"""

from __future__ import annotations

import re
from datetime import date, time
from functools import lru_cache
from typing import Annotated, Any
from zoneinfo import available_timezones

from fastapi import Path
from pydantic import AfterValidator, BeforeValidator, Field, GetJsonSchemaHandler, StrictBool, StrictInt, WithJsonSchema
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from api.text import CLEAN_PATTERN, UNSAFE_CHARACTERS, clean_text, no_card_number
from foundation.money import MAX_CENTS as MAX_CENTS  # the routes' amount ceiling, one for the API and the CLI
from workflows.calendar import validate_tz

EMAIL_PATTERN = rf"^[^@\s{UNSAFE_CHARACTERS}]+@[^@\s{UNSAFE_CHARACTERS}]+\.[^@\s{UNSAFE_CHARACTERS}]+$"
EMAIL = re.compile(EMAIL_PATTERN)
LOCAL_TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"
LOCAL_TIME = re.compile(LOCAL_TIME_PATTERN)
ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
#: Ids the API hands out and accepts: letters, digits, `_` and `-`.
ID_PATTERN = r"^[A-Za-z0-9_\-]+$"
MAX_ID_LENGTH = 64
#: The ceiling on a counter invoice's lines; each location may set a lower `max_invoice_lines`.
MAX_LINES = 100
#: PostgreSQL's bigint: ids and cursors above it cannot exist, and asking for one must not fail.
MAX_BIGINT = 2**63 - 1


class _Pattern:
    """Shows a validator's rule as the schema's `pattern` (the validator enforces it, with Python's
    regex engine, which also reads the class of unpaired surrogates the schema leaves out)."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["pattern"] = self.pattern
        return json_schema


def _email(value: str) -> str:
    if not EMAIL.fullmatch(value):
        raise ValueError("must look like name@example.com, with no spaces or characters refused in text")
    return value


#: pydantic's words for a strict integer refused (`"5000"`, `true` or `5000.0`): a fuzzer's check
#: tells this deliberate refusal from a schema mismatch by them, since JSON Schema counts 5000.0 an integer.
NOT_AN_INTEGER = "Input should be a valid integer"


def _exact_int(value: Any) -> Any:
    """Lets only a JSON integer through to a `Literal[...]` of integers (`true` and `1.0` equal 1)."""
    if type(value) is not int:
        raise PydanticCustomError("int_type", NOT_AN_INTEGER)
    return value


#: Refuses a value that holds a card number (see `foundation.card_numbers`): no field stores one.
NoCardNumber = AfterValidator(no_card_number)
#: Free text (names, descriptions, reasons): see `api.text` for what is refused and why.
CleanText = Annotated[str, AfterValidator(clean_text), NoCardNumber, _Pattern(CLEAN_PATTERN)]
#: An email address: something@something.something, no spaces, nothing `api.text` refuses.
Email = Annotated[str, AfterValidator(clean_text), NoCardNumber, AfterValidator(_email), _Pattern(EMAIL_PATTERN)]
#: An id in a request body (ids are stored, so a card number is refused here too).
Id = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN), NoCardNumber]
#: An id in the path (`/clients/{client_id}`).
PathId = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN, description="An id: letters, digits, _ and -")]
#: Put on a `Literal[...]` of integers, which alone would take `true` or `1.0` for 1.
ExactInt = BeforeValidator(_exact_int)
#: Cents and counts (months, quantities, limits): a JSON integer, never a string, boolean or 5000.0.
Count = StrictInt
#: A yes/no: a JSON boolean, never "yes", 1 or "false".
Flag = StrictBool


def _json_string(value: Any) -> Any:
    """Lets only a JSON string through to a date (a number would be read as a timestamp)."""
    if not isinstance(value, str):
        raise ValueError("must be a string in ISO 8601 form")
    return value


def _iso_day_text(value: Any) -> Any:
    """Lets only YYYY-MM-DD through: a query's text "0" would otherwise be read as a timestamp."""
    if not isinstance(value, str) or not ISO_DAY.fullmatch(value):
        raise ValueError("must be a date YYYY-MM-DD")
    return value


def _local_time_text(value: Any) -> Any:
    """Lets only HH:MM or HH:MM:SS through: a time of day in the location's zone has no offset."""
    if not isinstance(value, str) or not LOCAL_TIME.fullmatch(value):
        raise ValueError("must be a local time of day HH:MM or HH:MM:SS (00:00 to 23:59:59), with no offset")
    return value


@lru_cache(maxsize=1)
def iana_zones() -> tuple[str, ...]:
    """Every IANA time zone name this machine knows, which is what `workflows.calendar` can load."""
    return tuple(sorted(available_timezones()))


def _iana_zone(value: str) -> str:
    if value not in iana_zones():
        raise ValueError(f"must be an IANA time zone name such as 'America/New_York', got {value!r}")
    validate_tz(value)
    return value


class _ZoneEnum:
    """Lists the zones in the schema, so a client (or a fuzzer) sees exactly which names are taken."""

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["enum"] = list(iana_zones())
        return json_schema


#: A date, sent as an ISO 8601 string.
Day = Annotated[date, BeforeValidator(_json_string)]
#: A date in the query string: YYYY-MM-DD only.
QueryDay = Annotated[date, BeforeValidator(_iso_day_text), WithJsonSchema({"type": "string", "format": "date"})]
#: A local time of day, sent as HH:MM or HH:MM:SS and answered as HH:MM:SS.
TimeOfDay = Annotated[time, BeforeValidator(_local_time_text), WithJsonSchema({"type": "string", "pattern": LOCAL_TIME_PATTERN})]
TimeOfDayOut = Annotated[time, WithJsonSchema({"type": "string", "pattern": LOCAL_TIME_PATTERN})]
#: An IANA time zone name (a clinic is in a place, not at an offset).
Timezone = Annotated[str, AfterValidator(_iana_zone), _ZoneEnum()]
