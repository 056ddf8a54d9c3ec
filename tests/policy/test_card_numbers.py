"""A card number is found in any shape people paste it, and ordinary text is left alone."""

from __future__ import annotations

import random
import uuid

import pytest

from foundation.card_numbers import holds_card_number


@pytest.mark.parametrize(
    "text",
    [
        "4111111111111111",
        "4111111111111111/123",
        "pan:4111111111111111",
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "card 5555555555554444 exp 12/30",
        "4111111111111111 123",  # the number, then its security code
        "371449635398431",  # Amex, 15 digits
        "3714 496353 98431",  # Amex as printed, 4-6-5
        "4111_1111_1111_1111",  # as an id pattern would let it through
        "4111.1111.1111.1111",
        "6011111111111117",
        "4222222222222",  # 13 digits
        "\uff14\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11",  # fullwidth digits
    ],
)
def test_finds_a_card_number(text: str) -> None:
    assert holds_card_number(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Dana Whitfield",
        "4111111111111112",  # fails Luhn
        "411111111111",  # 12 digits
        "41111111111111111111111",  # 23 digits: no card number is that long
        "9f1c2e7a0b3d4c5e8f6a7b8c9d0e1f2a",  # a uniqueTransId
        "ad0741f27dc041d5959636667125dc3d",  # a UUID's hex holding 13 Luhn-valid digits inside it
        "70f23bff-cdbe-4a3b-9970-193511297cd9",  # and one whose digit groups join to 13
        "+1 (555) 123-4567",
        "Sick visit exam=85.00",
        "2026-12-03",
    ],
)
def test_leaves_other_text_alone(text: str) -> None:
    assert not holds_card_number(text)


def test_random_keys_are_never_taken_for_card_numbers() -> None:
    """Idempotency keys and ids are random hex: inside such a word no digit run is a card number
    (the run-anywhere rule refused about one UUID in 400)."""
    rng = random.Random(20261203)
    keys = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(20_000)]
    assert [k for k in keys if holds_card_number(k.hex) or holds_card_number(str(k))] == []
