"""Where an approved amount goes (pure: no server): the invoice, tips, surcharge, and the excess no
invoice needed, which the books hold as client credit until it is given back or kept."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from books.answers import ApprovalSplit, split_approval


@pytest.mark.parametrize(
    ("approved", "tip", "surcharge", "balance", "expected"),
    [
        (10_000, 0, 0, 10_000, ApprovalSplit(10_000, 0, 0, 0)),  # the ordinary sale
        (11_500, 1_500, 0, 10_000, ApprovalSplit(10_000, 1_500, 0, 0)),  # a tip rides with the sale
        (10_300, 0, 300, 10_000, ApprovalSplit(10_000, 0, 300, 0)),  # so does a surcharge
        (10_000, 0, 0, 0, ApprovalSplit(0, 0, 0, 10_000)),  # the invoice was paid or void: all excess
        (11_500, 1_500, 0, 0, ApprovalSplit(0, 0, 0, 11_500)),  # ... tip included: nothing was served
        (10_000, 0, 0, 5_500, ApprovalSplit(5_500, 0, 0, 4_500)),  # credit lowered the balance meanwhile
        (4_000, 0, 0, 10_000, ApprovalSplit(4_000, 0, 0, 0)),  # a partial approval
    ],
)
def test_an_approval_is_split_between_the_invoice_tips_surcharge_and_excess(
    approved: int, tip: int, surcharge: int, balance: int, expected: ApprovalSplit
) -> None:
    assert split_approval(approved, tip_cents=tip, surcharge_cents=surcharge, open_balance_cents=balance) == expected


@given(approved=st.integers(0, 10**9), tip=st.integers(0, 10**8), surcharge=st.integers(0, 10**8), balance=st.integers(0, 10**9))
def test_every_approved_cent_goes_somewhere_and_the_invoice_never_gets_more_than_it_needs(approved: int, tip: int, surcharge: int, balance: int) -> None:
    split = split_approval(approved, tip_cents=tip, surcharge_cents=surcharge, open_balance_cents=balance)
    assert split.applied + split.tip + split.surcharge + split.excess == approved
    assert 0 <= split.applied <= balance
    assert min(split.tip, split.surcharge, split.excess) >= 0


def test_a_write_off_is_shared_pro_rata_to_the_cent() -> None:
    from books.ledger import split_pro_rata
    from models.ledger import Account

    assert split_pro_rata(3_250, {Account.PLAN_REVENUE: 4_500, Account.FEE_REVENUE: 2_000}) == {
        Account.PLAN_REVENUE: 2_250,
        Account.FEE_REVENUE: 1_000,
    }
    assert sum(split_pro_rata(100, {Account.PLAN_REVENUE: 1, Account.FEE_REVENUE: 1, Account.REFUNDS: 1}).values()) == 100
    assert split_pro_rata(0, {Account.PLAN_REVENUE: 1}) == {}
