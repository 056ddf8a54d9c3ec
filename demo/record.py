"""Where the last demo left its books: recorded in the data folder so that the everyday commands
can reach them with `billing --demo ...` instead of a database URL and a random task queue."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

RECORD_FILE = "demo.json"


@dataclass(frozen=True)
class DemoRecord:
    """The demo's database (by name, on the stack's PostgreSQL), task queue and namespace."""

    database: str
    task_queue: str
    namespace: str


def write_record(data_dir: Path, record: DemoRecord) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / RECORD_FILE).write_text(json.dumps(asdict(record), indent=2) + "\n")


def read_record(data_dir: Path) -> DemoRecord | None:
    """The last demo's record, or None when no demo ran in `data_dir` (or its record is unreadable)."""
    try:
        raw = json.loads((data_dir / RECORD_FILE).read_text())
        return DemoRecord(database=str(raw["database"]), task_queue=str(raw["task_queue"]), namespace=str(raw["namespace"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
