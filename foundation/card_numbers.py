"""Whether a piece of text holds a payment card number, so no field anywhere can store one.

Why: a card number must never reach the database, a log or an error, and people paste them in odd
shapes (`4111111111111111/123`, `pan:4111...`, `4111 1111 1111 1111`). Any run of 13 to 19 digits,
whole or as consecutive groups split by one space or dash, not part of a longer word of letters and
digits, that passes the Luhn check counts; the
Luhn check is python-stdnum's, the one the sandbox's test cards are built on too.
"""

from __future__ import annotations

import re
import unicodedata

from stdnum import luhn

#: The shortest and longest card numbers (ISO/IEC 7812).
MIN_DIGITS = 13
MAX_DIGITS = 19
#: The digits in one printed group of a card number.
MIN_GROUP, MAX_GROUP = 3, 6
#: What a refusal says; it never repeats the value.
LOOKS_LIKE_A_CARD_NUMBER = "looks like a card number: send Gravity's card reference, never the number"

# Digit groups joined by one space, dash, underscore or dot each (`4111 1111-1111_1111`), standing as a word
# of their own: digits inside a longer token of letters and digits (a UUID, a hex key) are not a
# card number, or one random key in a few hundred would be refused.
_RUN = re.compile(r"(?<![0-9A-Za-z])[0-9]+(?:[ \-_.][0-9]+)*(?![0-9A-Za-z])")
_GROUP = re.compile(r"[0-9]+")


def holds_card_number(text: str) -> bool:
    """True when `text` holds a Luhn-valid run of 13 to 19 digits (fullwidth digits read as digits)."""
    normal = unicodedata.normalize("NFKC", text)
    return any(_groups_hold_card_number(_GROUP.findall(run.group(0))) for run in _RUN.finditer(normal))


def _groups_hold_card_number(groups: list[str]) -> bool:
    """Whether a group, or consecutive groups as cards print them (3 to 6 digits each: 4-4-4-4,
    4-6-5), join into a card number; a UUID's 8-4-4-4-12 groups never do."""
    for start in range(len(groups)):
        if MIN_DIGITS <= len(groups[start]) <= MAX_DIGITS and luhn.is_valid(groups[start]):
            return True
        digits = ""
        for group in groups[start:]:
            if not MIN_GROUP <= len(group) <= MAX_GROUP:
                break
            digits += group
            if len(digits) > MAX_DIGITS:
                break
            if len(digits) >= MIN_DIGITS and luhn.is_valid(digits):
                return True
    return False
