"""Proration of plan changes and the early-cancellation settlement, in integer cents.

Why this module exists: a plan change mid-period and an early cancellation both split a period's
price by days, and finance must be able to add the pieces back up to the cent. Every split here is
day-based and integer-only (no floats, no Decimal context), and follows one rounding rule, so the
pieces never drift from the whole. It is pure policy (standard library only, no I/O, no clock):
workflow code calls it and Temporal replays it.

**The rounding rule.** The share of an amount for the *elapsed* days of a period (from the period
start up to, not including, the change or cancel date) is ``amount * elapsed_days / period_days``
rounded **half up** to the cent. The share for the *remaining* days is the amount **minus** that
elapsed share, never rounded on its own. So elapsed + remaining == amount exactly, for every date,
and splitting a period day by day (each day's share = cumulative share through it minus through the
day before) sums to the amount exactly. The only inexactness is an exact half cent, which goes to the
elapsed (used) part: the client's credit or refund for the unused part is rounded half *down* (in the
clinic's favour by at most half a cent), and the charge for the remaining days at a new price is also
rounded half down (in the client's favour by at most half a cent).

The change or cancel date's own day counts as *remaining*: a change on the period's first day
credits the whole old price and charges the whole new one; a cancellation on day one refunds all.
A change on the period end (the next period's start, on its due day before that cycle is charged)
settles nothing: the paid period is used up, and the next cycle bills the new price.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

__all__ = [
    "CHARGE",
    "CHARGE_REDEEMED",
    "NEXT_CYCLE",
    "NONE",
    "PRORATE",
    "REFUND",
    "REFUND_UNUSED",
    "ProrationResult",
    "Settlement",
    "daily_split_cents",
    "early_cancel_settlement",
    "elapsed_share_cents",
    "prorate_change",
    "unused_refund_cents",
]

# Plan-change policies (health_plan.proration_policy).
PRORATE = "prorate"
NEXT_CYCLE = "next_cycle"
_CHANGE_POLICIES = (PRORATE, NEXT_CYCLE)

# Early-cancellation policies (health_plan.cancellation_policy).
CHARGE_REDEEMED = "charge_redeemed"
REFUND_UNUSED = "refund_unused"
NONE = "none"
_CANCEL_POLICIES = (CHARGE_REDEEMED, REFUND_UNUSED, NONE)

# Settlement.kind values.
CHARGE = "charge"
REFUND = "refund"


@dataclass(frozen=True)
class ProrationResult:
    """What a plan change costs or gives back in the current period, in cents.

    `credit_cents` is the unused part of the old price (given back), `charge_cents` the remaining part
    of the new price (owed); `net_cents` = charge - credit: positive, the client owes it now;
    negative, the client is owed it (a credit note or refund). With policy "next_cycle" all three are
    0 and the new price applies from `effective_from` = the period end (the next cycle).
    """

    policy: str
    credit_cents: int
    charge_cents: int
    net_cents: int
    period_days: int
    remaining_days: int
    effective_from: date


@dataclass(frozen=True)
class Settlement:
    """What cancelling early settles: kind "charge" (client owes), "refund" (clinic gives back) or
    "none", and an amount in cents that is never negative (0 exactly when kind is "none")."""

    kind: str
    amount_cents: int
    reason: str = ""


def _check_cents(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be whole cents (int), got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")
    return value


def _check_date(name: str, value: object) -> date:
    if isinstance(value, datetime) or not isinstance(value, date):
        raise ValueError(f"{name} must be a date, got {type(value).__name__}")
    return value


def _period_days(period_start: object, period_end: object) -> int:
    start = _check_date("period_start", period_start)
    end = _check_date("period_end", period_end)
    days = (end - start).days
    if days < 1:
        raise ValueError(f"period_end ({end}) must be after period_start ({start})")
    return days


def elapsed_share_cents(amount_cents: int, elapsed_days: int, period_days: int) -> int:
    """`amount_cents * elapsed_days / period_days`, rounded half up to the cent, in integers.

    The single rounding step of this module: every other split is a difference of two of these, which
    is why nothing drifts.
    """
    amount = _check_cents("amount_cents", amount_cents)
    if isinstance(period_days, bool) or not isinstance(period_days, int) or period_days < 1:
        raise ValueError(f"period_days must be an int >= 1, got {period_days!r}")
    if isinstance(elapsed_days, bool) or not isinstance(elapsed_days, int) or not 0 <= elapsed_days <= period_days:
        raise ValueError(f"elapsed_days must be an int in [0, {period_days}], got {elapsed_days!r}")
    # floor((2 * a * e + d) / (2 * d)) == round half up of a * e / d, for non-negative integers.
    return (2 * amount * elapsed_days + period_days) // (2 * period_days)


def daily_split_cents(amount_cents: int, period_days: int) -> list[int]:
    """The amount's share for each day of a `period_days`-day period; the list sums to the amount.

    Day i gets ``elapsed_share(i + 1) - elapsed_share(i)``: the same rule as every proration here,
    so the days of any stretch of the period add up to what `prorate_change` or
    `unused_refund_cents` computes for that stretch.
    """
    return [elapsed_share_cents(amount_cents, day + 1, period_days) - elapsed_share_cents(amount_cents, day, period_days) for day in range(period_days)]


def _split(amount_cents: int, *, period_start: date, period_end: date, on: date, on_name: str) -> tuple[int, int, int]:
    """(period_days, remaining_days, remaining share) of `amount_cents` for a change/cancel `on`."""
    days = _period_days(period_start, period_end)
    on = _check_date(on_name, on)
    if not period_start <= on <= period_end:
        raise ValueError(f"{on_name} ({on}) must be within the period [{period_start}, {period_end}]")
    elapsed = (on - period_start).days
    remaining_share = amount_cents - elapsed_share_cents(amount_cents, elapsed, days)
    return days, days - elapsed, remaining_share


def prorate_change(
    old_price_cents: int,
    new_price_cents: int,
    *,
    period_start: date,
    period_end: date,
    change_date: date,
    policy: str,
) -> ProrationResult:
    """Settle a plan change that takes effect on `change_date` inside [period_start, period_end].

    Policy "prorate": credit the old price's share for the remaining days (change date included)
    and charge the new price's share for the same days. Policy "next_cycle": nothing is settled now;
    the new price starts with the next cycle. The period is the one the old price was paid for
    (`calendar.period_for`), end exclusive; a change on its end settles nothing (module docstring).
    """
    old = _check_cents("old_price_cents", old_price_cents)
    new = _check_cents("new_price_cents", new_price_cents)
    if policy not in _CHANGE_POLICIES:
        raise ValueError(f"policy must be one of {', '.join(_CHANGE_POLICIES)}, got {policy!r}")
    days = _period_days(period_start, period_end)
    change_date = _check_date("change_date", change_date)
    if not period_start <= change_date <= period_end:
        raise ValueError(f"change_date ({change_date}) must be within the period [{period_start}, {period_end}]")
    if policy == NEXT_CYCLE:
        return ProrationResult(
            policy=policy,
            credit_cents=0,
            charge_cents=0,
            net_cents=0,
            period_days=days,
            remaining_days=(period_end - change_date).days,
            effective_from=period_end,
        )
    _, remaining_days, credit = _split(old, period_start=period_start, period_end=period_end, on=change_date, on_name="change_date")
    _, _, charge = _split(new, period_start=period_start, period_end=period_end, on=change_date, on_name="change_date")
    return ProrationResult(
        policy=policy,
        credit_cents=credit,
        charge_cents=charge,
        net_cents=charge - credit,
        period_days=days,
        remaining_days=remaining_days,
        effective_from=change_date,
    )


def unused_refund_cents(paid_cents: int, *, period_start: date, period_end: date, cancel_date: date) -> int:
    """The part of `paid_cents` (paid for [period_start, period_end)) that covers the days from
    `cancel_date` on; never more than paid. Cancelling on the period end refunds nothing."""
    paid = _check_cents("paid_cents", paid_cents)
    _, _, refund = _split(paid, period_start=period_start, period_end=period_end, on=cancel_date, on_name="cancel_date")
    return refund


def early_cancel_settlement(
    *,
    policy: str,
    paid_total_cents: int,
    redeemed_retail_cents: int,
    current_period_paid_cents: int,
    period_start: date,
    period_end: date,
    cancel_date: date,
) -> Settlement:
    """What a client settles when cancelling a health plan before its term ends (plan policy).

    * "charge_redeemed": wellness plans discount services against a commitment; a client who leaves
      early pays the retail value of services redeemed beyond what the plan fees already paid:
      max(0, redeemed_retail - paid_total). Nothing is refunded under this policy.
    * "refund_unused": the unused days of the current, paid period are refunded pro rata
      (`unused_refund_cents` of `current_period_paid_cents`).
    * "none": the subscription just stops; nothing is charged or refunded.
    """
    paid_total = _check_cents("paid_total_cents", paid_total_cents)
    redeemed = _check_cents("redeemed_retail_cents", redeemed_retail_cents)
    current_paid = _check_cents("current_period_paid_cents", current_period_paid_cents)
    if policy not in _CANCEL_POLICIES:
        raise ValueError(f"policy must be one of {', '.join(_CANCEL_POLICIES)}, got {policy!r}")
    # Validate the dates for every policy, so a bad call fails the same way whatever the plan says.
    _period_days(period_start, period_end)
    cancel_date = _check_date("cancel_date", cancel_date)
    if not period_start <= cancel_date <= period_end:
        raise ValueError(f"cancel_date ({cancel_date}) must be within the period [{period_start}, {period_end}]")

    if policy == CHARGE_REDEEMED:
        owed = max(0, redeemed - paid_total)
        if owed == 0:
            return Settlement(NONE, 0, f"redeemed {redeemed} cents <= paid {paid_total} cents")
        return Settlement(CHARGE, owed, f"redeemed {redeemed} cents beyond paid {paid_total} cents")
    if policy == REFUND_UNUSED:
        refund = unused_refund_cents(current_paid, period_start=period_start, period_end=period_end, cancel_date=cancel_date)
        if refund == 0:
            return Settlement(NONE, 0, "nothing unused in the current paid period")
        days = (period_end - cancel_date).days
        return Settlement(REFUND, refund, f"{days} unused day(s) of {current_paid} cents paid")
    return Settlement(NONE, 0, "plan settles nothing on early cancellation")
