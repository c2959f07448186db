"""What a worker leases: weighted shares, strict order, and never more than its free slots."""

from __future__ import annotations

import asyncio
from typing import Any

from waiting import SETTLE, within
from worker_testing import enqueue, enqueue_many, stats, stop

from leasq.v1 import task_pb2
from leasq_worker import Registry, Task

WEIGHTS = {"critical": 6, "default": 3, "low": 1}
PROCESSED = 10_000


async def test_saturated_weighted_queues_are_served_in_proportion_and_none_starves(
    broker_stub: Any, start_worker: Any, queue: str
) -> None:
    names = {name: f"{queue}-{name}" for name in WEIGHTS}
    # Enough in each queue that none runs dry before 10,000 tasks are processed.
    backlog = {"critical": 7_000, "default": 4_000, "low": 2_000}
    await enqueue_many(broker_stub, [
        task_pb2.TaskSpec(type="noop", queue=names[name])
        for name, count in backlog.items() for _ in range(count)
    ])  # fmt: skip
    order: list[str] = []
    done = asyncio.Event()
    registry = Registry()

    @registry.handler("noop")
    async def noop(task: Task) -> None:
        order.append(task.queue)
        if len(order) == PROCESSED:
            done.set()

    worker = await start_worker(
        registry, queues={names[n]: w for n, w in WEIGHTS.items()}, concurrency=50
    )
    # 10,000 no-op tasks: seconds at the worst drain rate measured here (~1,000/s loaded).
    await within(60, done.wait(), lambda: f"only {len(order)} of {PROCESSED} tasks ran")
    await stop(worker)

    first = order[:PROCESSED]
    for name, weight in WEIGHTS.items():
        share = first.count(names[name]) / PROCESSED
        assert abs(share - weight / 10) <= 0.05, (name, share)
    # Never starved: the weight-1 queue is served in every stretch of 500 tasks (~50 expected).
    for start in range(0, PROCESSED, 500):
        assert names["low"] in first[start : start + 500]


async def test_strict_order_serves_a_lower_queue_only_when_higher_ones_are_empty(
    broker_stub: Any, start_worker: Any, queue: str
) -> None:
    high, low = f"{queue}-high", f"{queue}-low"
    await enqueue_many(broker_stub, [
        task_pb2.TaskSpec(type="noop", queue=q) for q in (low, high) for _ in range(200)
    ])  # fmt: skip
    order: list[str] = []
    done = asyncio.Event()
    registry = Registry()

    @registry.handler("noop")
    async def noop(task: Task) -> None:
        order.append(task.queue)
        if len(order) == 400:
            done.set()

    worker = await start_worker(registry, queues=[high, low], strict=True, concurrency=10)
    await within(SETTLE, done.wait(), lambda: f"only {len(order)} of 400 tasks ran")
    await stop(worker)
    assert order == [high] * 200 + [low] * 200


async def test_a_worker_leases_only_as_many_tasks_as_it_has_free_slots(
    broker_stub: Any, inspect_stub: Any, start_worker: Any, queue: str
) -> None:
    release = asyncio.Event()
    started: list[str] = []
    three = asyncio.Event()
    registry = Registry()

    @registry.handler("block")
    async def block(task: Task) -> None:
        started.append(task.id)
        if len(started) == 3:
            three.set()
        await release.wait()

    for _ in range(10):
        await enqueue(broker_stub, "block", queue)
    worker = await start_worker(registry, queues=[queue], concurrency=3)
    await within(SETTLE, three.wait(), lambda: f"only {len(started)} handlers started")
    counts = await stats(inspect_stub, queue)
    assert (counts.active, counts.pending) == (3, 7)
    release.set()
    await stop(worker)
