"""How far from today an enrollment may start: one definition for the API, the CLI and any later entry point."""

from __future__ import annotations

#: A start further back would bill a pile of past cycles at once.
MAX_DAYS_BACK = 31
#: A start further ahead is more likely a typo than a plan.
MAX_DAYS_AHEAD = 366
