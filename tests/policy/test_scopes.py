"""The scope rule alone: which routes each scope may call, without a server."""

from __future__ import annotations

import pytest

from foundation.scopes import FRONT_DESK_WRITES, REFUND_WRITES, Caller, Scope, allowed

READS = [
    ("GET", "/clients/{client_id}"),
    ("GET", "/invoices/{invoice_id}"),
    ("GET", "/subscriptions/{subscription_id}"),
    ("GET", "/refunds/{refund_request_id}"),
    ("GET", "/locations/{location_id}/terminals"),
]
SETTINGS_WRITES = [
    ("POST", "/locations"),
    ("PATCH", "/locations/{location_id}/settings"),
    ("POST", "/locations/{location_id}/terminals"),
    ("POST", "/plans"),
]
SUBSCRIPTION_COMMANDS = [("POST", "/subscriptions"), ("POST", "/subscriptions/{subscription_id}/cancel"), ("POST", "/subscriptions/{subscription_id}/plan")]


@pytest.mark.parametrize("scope", list(Scope))
@pytest.mark.parametrize(("method", "route"), READS)
def test_every_scope_reads(scope: Scope, method: str, route: str) -> None:
    assert allowed(scope, method, route)


@pytest.mark.parametrize(("method", "route"), sorted(FRONT_DESK_WRITES | REFUND_WRITES) + SETTINGS_WRITES + SUBSCRIPTION_COMMANDS)
def test_billing_may_call_everything_and_finance_nothing_that_writes(method: str, route: str) -> None:
    assert allowed(Scope.BILLING, method, route)
    assert not allowed(Scope.FINANCE, method, route)


def test_front_desk_works_the_counter_but_gives_nothing_back_and_changes_no_settings() -> None:
    for method, route in FRONT_DESK_WRITES:
        assert allowed(Scope.FRONT_DESK, method, route)
    for method, route in [*REFUND_WRITES, *SETTINGS_WRITES, *SUBSCRIPTION_COMMANDS]:
        assert not allowed(Scope.FRONT_DESK, method, route), (method, route)
    assert not allowed(Scope.FRONT_DESK, "GET", "/events")
    assert allowed(Scope.FINANCE, "GET", "/events") and allowed(Scope.REFUNDS, "get", "/events")
    for route in ("/finance/journal", "/finance/ledger/balances", "/finance/audit/clients/{client_id}"):
        assert not allowed(Scope.FRONT_DESK, "GET", route)
        assert allowed(Scope.FINANCE, "GET", route) and allowed(Scope.BILLING, "GET", route)


def test_refunds_gives_money_back_and_does_nothing_else() -> None:
    for method, route in REFUND_WRITES:
        assert allowed(Scope.REFUNDS, method, route)
    for method, route in [*FRONT_DESK_WRITES, *SETTINGS_WRITES, *SUBSCRIPTION_COMMANDS]:
        assert not allowed(Scope.REFUNDS, method, route), (method, route)


def test_a_route_nobody_listed_is_readable_but_written_only_by_billing() -> None:
    for scope in (Scope.FRONT_DESK, Scope.FINANCE, Scope.REFUNDS):
        assert allowed(scope, "GET", "/some/new/{thing_id}")
        assert not allowed(scope, "POST", "/some/new/{thing_id}")
        assert not allowed(scope, "DELETE", "/clients/{client_id}")
    assert allowed(Scope.BILLING, "DELETE", "/some/new/{thing_id}")


def test_reach_none_is_every_location_and_a_set_is_only_those() -> None:
    everywhere = Caller("sys", Scope.BILLING, None)
    one = Caller("desk", Scope.FRONT_DESK, frozenset({"loc_a"}))
    assert everywhere.reaches("loc_b") and everywhere.reaches_all()
    assert one.reaches("loc_a") and not one.reaches("loc_b") and not one.reaches_all()
    assert one.reaches(None)  # a plan offered at every location
    assert one.actor.token == "desk" and one.actor.staff is None
