"""The hot path's cheap bookkeeping: one deadline timer for all attempts, attempt counts."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from leasq.v1 import task_pb2
from leasq_worker import Task
from leasq_worker.attempt_counts import AttemptCounts
from leasq_worker.deadlines import Deadlines
from leasq_worker.leases import HeldLease


def running(loop: asyncio.AbstractEventLoop, deadline: float) -> HeldLease:
    leased = task_pb2.LeasedTask(id=f"t{deadline}", queue="q", lease_token=f"k{deadline}")
    held = HeldLease(leased, Task(leased), sent_at=loop.time(), lease=15.0)
    held.deadline = deadline
    held.runner = loop.create_task(asyncio.sleep(3600))
    return held


def stop(held: HeldLease) -> None:
    assert held.runner is not None
    held.runner.cancel()


async def test_deadlines_fire_in_time_order_whatever_order_they_were_watched_in() -> None:
    loop = asyncio.get_running_loop()
    fired: list[HeldLease] = []
    everyone_due = asyncio.Event()

    def due(held: HeldLease) -> None:
        fired.append(held)
        if len(fired) == 3:
            everyone_due.set()

    deadlines = Deadlines(due)
    now = loop.time()
    later, soon, middle, done = (running(loop, now + d) for d in (0.06, 0.02, 0.04, 0.01))
    for held in (later, soon, middle, done):  # soon and middle arrive out of order
        deadlines.watch(held)
    stop(done)  # finished before its deadline: skipped
    await asyncio.wait_for(everyone_due.wait(), 5)
    assert fired == [soon, middle, later]
    assert all(loop.time() >= (held.deadline or 0.0) for held in fired)
    deadlines.close()
    for held in (later, soon, middle):
        stop(held)


async def test_finished_attempts_do_not_pile_up_behind_the_deadline_timer() -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(lambda held: pytest.fail("no deadline is due"))
    long_one = running(loop, loop.time() + 3600)
    deadlines.watch(long_one)
    for i in range(5000):  # short attempts behind a long one: compaction keeps the rest small
        held = running(loop, loop.time() + 3600 + i)
        deadlines.watch(held)
        stop(held)
        await asyncio.sleep(0)
    assert len(deadlines._queue) + len(deadlines._heap) < 2100
    deadlines.close()
    stop(long_one)


def test_attempt_counts_expose_a_counter_and_a_histogram_with_inclusive_bounds() -> None:
    counts = AttemptCounts((0.001, 0.01))
    registry = CollectorRegistry()
    registry.register(counts)
    for seconds in (0.001, 0.005, 0.5):
        counts.add("job", "succeeded", seconds)
    counts.add("job", "released", None)

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("leasq_worker_tasks_total", type="job", outcome="succeeded") == 3
    assert value("leasq_worker_tasks_total", type="job", outcome="released") == 1
    bucket = "leasq_worker_handler_duration_seconds_bucket"
    assert value(bucket, type="job", le="0.001") == 1
    assert value(bucket, type="job", le="0.01") == 2
    assert value(bucket, type="job", le="+Inf") == 3
    assert value("leasq_worker_handler_duration_seconds_count", type="job") == 3
    assert value("leasq_worker_handler_duration_seconds_sum", type="job") == pytest.approx(0.506)
    assert b"# TYPE leasq_worker_handler_duration_seconds histogram" in generate_latest(registry)
