"""Where the last demo left its books: recorded in the data folder so that the everyday commands
can reach them with `billing --demo ...` instead of a database URL and a random task queue."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

RECORD_FILE = "demo.json"
#: The demo's sandbox state, written as its sandbox stops, so `billing --demo reconcile` can serve it.
DEMO_SANDBOX_FILE = "demo-sandbox.json"


@dataclass(frozen=True)
class DemoRecord:
    """The demo's database (by name, on the stack's PostgreSQL), task queue and namespace, and its
    sandbox's state file in the data folder (None in records from before demos kept one)."""

    database: str
    task_queue: str
    namespace: str
    sandbox_state: str | None = None

    def sandbox_state_file(self, data_dir: Path) -> Path:
        """Where the demo's sandbox state is, or would be (named even when this record has none)."""
        return data_dir / (self.sandbox_state or DEMO_SANDBOX_FILE)


def write_record(data_dir: Path, record: DemoRecord) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / RECORD_FILE).write_text(json.dumps(asdict(record), indent=2) + "\n")


def read_record(data_dir: Path) -> DemoRecord | None:
    """The last demo's record, or None when no demo ran in `data_dir` (or its record is unreadable)."""
    try:
        raw = json.loads((data_dir / RECORD_FILE).read_text())
        kept = raw.get("sandbox_state")
        return DemoRecord(
            database=str(raw["database"]),
            task_queue=str(raw["task_queue"]),
            namespace=str(raw["namespace"]),
            sandbox_state=None if kept is None else str(kept),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
