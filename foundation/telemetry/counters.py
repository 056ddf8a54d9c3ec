"""The business counters: what the clinic's money did, as metrics next to Temporal's own.

Why counters and not only the ledger: the ledger says what happened to each invoice; an operator
needs the *rate* (declines spiking for one reason, recoveries drying up) without querying the
database. Counted in the activities, right after the result is committed, so a count means a
recorded result. An activity retried after its commit may count once more: these are rates for
dashboards and alerts, never a source of truth for money (the ledger is).

Attribute values are small closed sets (outcome, decline reason/class, kind, channel): never an id,
an amount, a card reference or a token.
"""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry.metrics import Counter, Meter

METER_NAME = "vet_billing"


@dataclass(frozen=True)
class BusinessCounters:
    charges: Counter
    declines: Counter
    recoveries: Counter
    give_backs: Counter

    @classmethod
    def on(cls, meter: Meter) -> BusinessCounters:
        return cls(
            charges=meter.create_counter("billing.charges", unit="{charge}", description="Card charges answered by Gravity, by outcome and channel"),
            declines=meter.create_counter("billing.declines", unit="{charge}", description="Declined charges by decline reason and class"),
            recoveries=meter.create_counter(
                "billing.recoveries", unit="{charge}", description="Charges approved on a retry (attempt > 1): dunning that worked"
            ),
            give_backs=meter.create_counter("billing.refunds", unit="{refund}", description="Refunds and voids sent to Gravity, by kind and status"),
        )

    def charge(self, *, outcome: str, attempt: int, channel: str = "card_on_file", decline_reason: str | None = None, decline_class: str | None = None) -> None:
        """One charge answered: `outcome` is approved | partial | declined."""
        self.charges.add(1, {"outcome": outcome, "channel": channel})
        if outcome == "declined":
            self.declines.add(1, {"reason": decline_reason or "unknown", "class": decline_class or "unknown", "channel": channel})
        elif attempt > 1:
            self.recoveries.add(1, {"channel": channel})

    def give_back(self, *, kind: str, status: str) -> None:
        """One refund or void answered: `kind` is refund | void, `status` done | failed."""
        self.give_backs.add(1, {"kind": kind, "status": status})
