"""Which status refuses which command: one rule, asked by each Update's validator and again when the
command has its turn (a command queued behind a cancel finds the subscription final)."""

from __future__ import annotations

import pytest

from workflows.subscription import status_refusal

COMMANDS = ("cancel", "pause", "resume", "change_card", "change_plan", "pay_now")


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("status", ["cancelled", "ended"])
def test_a_final_subscription_refuses_every_command(command: str, status: str) -> None:
    refusal = status_refusal(command, status)
    assert refusal is not None and status in refusal


@pytest.mark.parametrize("command", ["cancel", "pause", "change_card", "change_plan", "pay_now"])
def test_an_active_subscription_takes_every_command_but_resume(command: str) -> None:
    assert status_refusal(command, "active") is None
    assert status_refusal("resume", "active") == "only a paused subscription can be resumed; it is active"


@pytest.mark.parametrize("status", ["past_due", "suspended", "paused", "pending"])
def test_only_an_active_subscription_can_be_paused(status: str) -> None:
    assert status_refusal("pause", status) == f"only an active subscription can be paused; it is {status}"
    assert (status_refusal("resume", status) is None) == (status == "paused")
