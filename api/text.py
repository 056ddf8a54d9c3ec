"""The one rule for text the API accepts: no NUL, no control characters, no bidirectional overrides.

Why: PostgreSQL text cannot hold NUL (an insert fails), a lone surrogate cannot be encoded, and
control or bidi-override characters in a name or reason rewrite what a person later reads in a
terminal, a log line or a receipt (`"\u202eevil\x07\x1b[31m"`). The same character class is the
validator and the `pattern` the OpenAPI schema shows, so the schema and the refusal never disagree.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from foundation.card_numbers import LOOKS_LIKE_A_CARD_NUMBER, holds_card_number

#: C0 and C1 controls (NUL, tab, newline and escape included), DEL, the bidi marks, embeddings,
#: overrides and isolates, and the Unicode line and paragraph separators.
UNSAFE_CHARACTERS = r"\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069"
CLEAN_PATTERN = rf"^[^{UNSAFE_CHARACTERS}]*$"
CLEAN_RULE = "no NUL, control, line-separator or bidirectional-override characters"

# Unpaired surrogates too: JSON can spell one (`"\ud800"`), but it is not text and cannot be stored.
# They stay out of the schema's pattern, which the Rust regex engines of validators cannot read.
_UNSAFE = re.compile(rf"[{UNSAFE_CHARACTERS}\ud800-\udfff]")


def first_unsafe(value: str) -> str | None:
    """How the first character the API refuses in `value` is named (`U+0000 NULL at 3`), or None."""
    found = _UNSAFE.search(value)
    if found is None:
        return None
    char = found.group(0)
    name = unicodedata.name(char, "control character" if unicodedata.category(char) == "Cc" else "unpaired surrogate")
    return f"U+{ord(char):04X} {name} at {found.start()}"


def clean_text(value: str) -> str:
    """`value` unchanged when it is clean; a ValueError naming the offending character otherwise."""
    unsafe = first_unsafe(value)
    if unsafe is not None:
        raise ValueError(f"must hold {CLEAN_RULE} (found {unsafe})")
    return value


def no_card_number(value: str) -> str:
    """`value` unchanged unless it holds a card number; the refusal never repeats the value."""
    if holds_card_number(value):
        raise ValueError(LOOKS_LIKE_A_CARD_NUMBER)
    return value


def first_unsafe_field(data: Any, path: str = "") -> tuple[str, str] | None:
    """The first string (key or value) in decoded JSON that breaks the rule, as (dotted field, reason)."""
    if isinstance(data, str):
        unsafe = first_unsafe(data)
        return None if unsafe is None else (path or "body", f"must hold {CLEAN_RULE} (found {unsafe})")
    if isinstance(data, dict):
        for key, value in data.items():
            field = f"{path}.{key}" if path else str(key)
            found = first_unsafe_field(str(key), field) or first_unsafe_field(value, field)
            if found is not None:
                return found
    if isinstance(data, list):
        for index, value in enumerate(data):
            found = first_unsafe_field(value, f"{path}.{index}" if path else str(index))
            if found is not None:
                return found
    return None
