"""The trail's two export shapes: flat CSV rows for spreadsheets, and JSON with every payload."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import asdict, fields
from typing import Any

from pydantic_core import to_jsonable_python

from operations.history.entries import HistoryEntry, WorkflowRuns

CSV_COLUMNS = tuple(f.name for f in fields(HistoryEntry) if f.name != "payload")


def trail_json(subject: str, subject_id: str, workflows: Iterable[WorkflowRuns], entries: Iterable[HistoryEntry]) -> dict[str, Any]:
    """The whole trail as JSON data, payloads included."""
    return {
        "subject": subject,
        "id": subject_id,
        "workflows": [asdict(w) for w in workflows],
        "entries": [to_jsonable_python(asdict(e)) for e in entries],
    }


def trail_csv(entries: Iterable[HistoryEntry]) -> str:
    """One CSV row per entry under `CSV_COLUMNS`, an empty cell for a missing value."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for entry in entries:
        writer.writerow({k: "" if v is None else v for k, v in entry.row().items()})
    return out.getvalue()
