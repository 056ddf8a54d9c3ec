"""The bare-Temporal baseline: one workflow that runs one no-op activity and completes.

Why it exists: the benchmark reports billing throughput as a ratio to this, measured in the same
run, on the same server, worker settings and machine, so a noisy shared machine cancels out.
The activity's options mirror a billing charge (a timeout and a retry policy), nothing more.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy


@activity.defn(name="bench_no_op")
async def no_op(value: int) -> int:
    return value


@workflow.defn(name="BenchNoOp")
class NoOpWorkflow:
    @workflow.run
    async def run(self, value: int) -> int:
        return await workflow.execute_activity(
            "bench_no_op",
            value,
            result_type=int,
            start_to_close_timeout=timedelta(seconds=120),
            retry_policy=RetryPolicy(maximum_attempts=0),
        )
