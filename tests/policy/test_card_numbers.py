"""A card number is found in any shape people paste it, and ordinary text is left alone."""

from __future__ import annotations

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
        "+1 (555) 123-4567",
        "Sick visit exam=85.00",
        "2026-12-03",
    ],
)
def test_leaves_other_text_alone(text: str) -> None:
    assert not holds_card_number(text)
