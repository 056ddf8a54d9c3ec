"""Which contract each activity takes and returns, so its payloads decode typed (unknown ones stay JSON).

Read from the registry the worker runs, as each `@activity.defn` method declares them, so a new
activity decodes typed without a table kept in step by hand."""

from __future__ import annotations

from activities.registry import activity_types

ACTIVITIES: dict[str, tuple[type | None, type | None]] = activity_types()
