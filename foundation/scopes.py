"""What an API credential may do: its scope (which routes) and its reach (which locations).

Pure, so the rule "may this scope call this route" is tested without a server and read in one place.
A route is named by its method and its path template (`/clients/{client_id}`), as FastAPI matched it.
A route this table does not name may be read by every scope but front desk's event ban, and written
only by `billing`: a new route is closed to writers until someone decides who may use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Scope(StrEnum):
    #: The clinic group's billing system: every route, for the locations it reaches.
    BILLING = "billing"
    #: A clinic's front desk: clients, pets, cards, counter invoices, terminal payments, deposits;
    #: no refunds, no plan or location settings, no event feed.
    FRONT_DESK = "front_desk"
    #: Finance: read everything it reaches, the event feed included; change nothing.
    FINANCE = "finance"
    #: Read everything it reaches, and give money back (refunds, deposit refunds, invoice cancellation).
    REFUNDS = "refunds"


SCOPE_DOCS: dict[Scope, str] = {
    Scope.BILLING: "every route, for the locations the token reaches",
    Scope.FRONT_DESK: "read clients, pets, cards, invoices, plans, subscriptions, terminals and payments; add clients, pets and cards; "
    "set a default card or remove one; counter invoices, terminal payments (and their cancel), deposits, service redemptions; "
    "no refunds, settings, plans, events or /finance books",
    Scope.FINANCE: "read-only: every GET route, the event feed included",
    Scope.REFUNDS: "every GET route, plus refunds of payments and deposits and invoice cancellation",
}

FRONT_DESK_WRITES = frozenset(
    {
        ("POST", "/clients"),
        ("POST", "/clients/{client_id}/pets"),
        ("POST", "/clients/{client_id}/cards"),
        ("POST", "/clients/{client_id}/cards/{card_id}/default"),
        ("DELETE", "/clients/{client_id}/cards/{card_id}"),
        ("POST", "/invoices"),
        ("POST", "/terminal-payments"),
        ("POST", "/terminal-payments/{payment_id}/cancel"),
        ("POST", "/deposits"),
        ("POST", "/subscriptions/{subscription_id}/redemptions"),
    }
)
REFUND_WRITES = frozenset(
    {
        ("POST", "/payments/{payment_id}/refunds"),
        ("POST", "/deposits/{deposit_id}/refund"),
        ("POST", "/invoices/{invoice_id}/cancel"),
    }
)
#: Reads the front desk has no use for: the feed is the billing system's (and finance's), and so
#: are the books under /finance (ledger, journal, reconciliation, audit trails).
FRONT_DESK_HIDDEN = frozenset({("GET", "/events")})
FINANCE_PREFIX = "/finance/"


def allowed(scope: Scope, method: str, route: str) -> bool:
    """True when a token of `scope` may call `method route` (the location check comes after)."""
    method = method.upper()
    if scope == Scope.BILLING:
        return True
    if method in READ_METHODS:
        return not (scope == Scope.FRONT_DESK and (("GET", route) in FRONT_DESK_HIDDEN or route.startswith(FINANCE_PREFIX)))
    if scope == Scope.FRONT_DESK:
        return (method, route) in FRONT_DESK_WRITES
    if scope == Scope.REFUNDS:
        return (method, route) in REFUND_WRITES
    return False


#: The name BILLING_API_TOKEN goes by in the audit trail (no stored token may take it).
SETTINGS_TOKEN_NAME = "settings-token"
#: What the CLI's actor starts with (`cli:<os user>`); a token's name cannot hold the colon.
CLI_ACTOR_PREFIX = "cli:"


@dataclass(frozen=True)
class Actor:
    """Who asked for a command or money movement: the credential (a token's name, or `cli:<os
    user>`) and the staff member the billing system named, when it named one."""

    token: str
    staff: str | None = None


@dataclass(frozen=True)
class Caller:
    """An authenticated API request: its token's name and scope, the locations it reaches (None:
    every location) and the staff member named in `X-Billing-Staff`."""

    token: str
    scope: Scope
    reach: frozenset[str] | None
    staff: str | None = None

    def reaches(self, location_id: str | None) -> bool:
        """A location-less thing (a plan for every location) is reached by every token."""
        return self.reach is None or location_id is None or location_id in self.reach

    def reaches_all(self) -> bool:
        return self.reach is None

    @property
    def actor(self) -> Actor:
        return Actor(self.token, self.staff)
