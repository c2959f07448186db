"""A worker never holds more leases than its concurrency, nor leases a task it cannot start."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from google.protobuf.duration_pb2 import Duration
from waiting import MARGIN, SETTLE, eventually, within
from worker_testing import enqueue, enqueue_many, get_task, stats, stop

from leasq.v1 import task_pb2
from leasq_worker import Registry, SkipRetry, Task

CONCURRENCY = 4
WAVES = 6
TIMEOUT = 1  # seconds, of the attempt that must time out


async def test_leases_held_never_exceed_the_concurrency_while_acks_and_nacks_lease_next(
    broker_stub: Any, inspect_stub: Any, start_worker: Any, queue: str
) -> None:
    # Half of every wave fails: its Nack and the wave's Ack both ask for next tasks.
    await enqueue_many(broker_stub, [
        task_pb2.TaskSpec(type="job", queue=queue, payload=b"fail" if n % 2 else b"ok")
        for n in range(CONCURRENCY * WAVES)
    ])  # fmt: skip
    observed: list[tuple[int, int]] = []
    started = asyncio.Condition()
    waves = [asyncio.Event() for _ in range(WAVES)]
    registry = Registry()
    worker: Any = None

    @registry.handler("job")
    async def job(task: Task) -> None:
        # At every lease: what the worker holds and what the broker counts as leased.
        active = (await stats(inspect_stub, queue)).active
        async with started:
            observed.append((worker.leases_held, active))
            wave = waves[(len(observed) - 1) // CONCURRENCY]
            started.notify_all()
        await wave.wait()
        if task.payload == b"fail":
            raise SkipRetry("fails on purpose")

    worker = await start_worker(registry, queues=[queue], concurrency=CONCURRENCY)
    for number, wave in enumerate(waves, start=1):
        async with started:
            wave_started = started.wait_for(lambda n=number: len(observed) >= n * CONCURRENCY)
            await within(SETTLE, wave_started, f"wave {number}: not all its tasks started")
        wave.set()
    await stop(worker)
    assert len(observed) == CONCURRENCY * WAVES
    assert max(held for held, _ in observed) <= CONCURRENCY
    assert max(active for _, active in observed) <= CONCURRENCY
    final = await stats(inspect_stub, queue)
    assert (final.active, final.pending) == (0, 0)


async def test_no_task_is_leased_while_a_timed_out_sync_handler_still_holds_the_thread(
    broker_stub: Any, inspect_stub: Any, start_worker: Any, queue: str
) -> None:
    registry = Registry()
    stuck_running = threading.Event()
    unblock = threading.Event()
    quick_ran = asyncio.Event()
    loop = asyncio.get_running_loop()

    @registry.handler("stuck")
    def stuck(task: Task) -> None:
        stuck_running.set()
        unblock.wait(30)  # ignores its cancel signal: the thread runs on after the timeout

    @registry.handler("quick")
    def quick(task: Task) -> None:
        loop.call_soon_threadsafe(quick_ran.set)

    stuck_id = await enqueue(broker_stub, "stuck", queue, timeout=Duration(seconds=TIMEOUT),
                             max_retry=0)  # fmt: skip
    quick_id = await enqueue(broker_stub, "quick", queue)
    worker = await start_worker(registry, queues=[queue], concurrency=1)
    try:
        assert await asyncio.to_thread(stuck_running.wait, SETTLE), "the stuck task never started"

        # The attempt times out and is reported; no event says when it is.
        async def settled() -> bool:
            state = (await get_task(inspect_stub, queue, stuck_id)).state
            return state != task_pb2.TASK_STATE_ACTIVE

        await eventually(settled, TIMEOUT + MARGIN, "the timed-out attempt was not reported")
        assert (await get_task(inspect_stub, queue, stuck_id)).state == (
            task_pb2.TASK_STATE_ARCHIVED
        )
        # Its Nack asked for no next task: the one thread is still busy.
        assert (await get_task(inspect_stub, queue, quick_id)).state == (
            task_pb2.TASK_STATE_PENDING
        )
        assert worker.leases_held == 0
    finally:
        unblock.set()
    await within(SETTLE, quick_ran.wait(), "the queued task did not run once the thread was free")
    await stop(worker)


async def test_a_task_leased_by_a_long_poll_that_outwaited_its_lease_is_run_once_and_acked(
    broker_stub: Any, inspect_stub: Any, start_worker: Any, queue: str
) -> None:
    # The Lease was sent longer than one lease duration before the broker granted the task:
    # the lease must be counted from the grant, not from the send, or the outcome is never
    # reported and the task runs again once the broker reclaims it.
    registry = Registry()
    runs: list[str] = []
    done = asyncio.Event()

    @registry.handler("job")
    async def job(task: Task) -> None:
        runs.append(task.id)
        done.set()

    await start_worker(registry, queues=[queue], concurrency=1, lease_duration=1.0,
                       poll_wait=5.0)  # fmt: skip
    await asyncio.sleep(2.0)  # the worker's long poll now waits past one lease duration
    task_id = await enqueue(broker_stub, "job", queue, retention=Duration(seconds=60))
    await within(MARGIN, done.wait(), "the waiting long poll did not take the task at once")

    async def completed() -> task_pb2.TaskInfo | None:
        info = await get_task(inspect_stub, queue, task_id)
        return info if info.state == task_pb2.TASK_STATE_COMPLETED else None

    # Acked at once: a lease counted from the send would be lost, and reclaimed after 1 s.
    info = await eventually(completed, MARGIN, "the task was not acked")
    assert runs == [task_id]
    assert info.lease_lost_count == 0
