"""Real worker processes killed, stopped and paused: nothing lost, nothing reported twice."""

from __future__ import annotations

import signal
import time
from typing import Any

from google.protobuf import duration_pb2
from worker_testing import Events, enqueue, get_task, stats

from leasq.v1 import task_pb2

LEASE = 2.0


def retention() -> duration_pb2.Duration:
    return duration_pb2.Duration(seconds=300)


async def test_tasks_of_a_killed_worker_are_redelivered_to_another_within_the_lease(
    broker_stub: Any, inspect_stub: Any, spawn_worker: Any, events: Events, queue: str
) -> None:
    ids = [await enqueue(broker_stub, "job", queue, retention=retention()) for _ in range(6)]
    lease_args = ["--lease-duration", str(LEASE)]
    first = await spawn_worker(name="A", mode="hang", args=["--concurrency", "3", *lease_args])
    started = await events.take(3)
    held = {task_id for _, task_id, _, _ in started}
    second = await spawn_worker(name="B", args=["--concurrency", "4", *lease_args])
    assert {(what, name) for what, _, name, _ in await events.take(6)} == {
        ("start", "B"),
        ("done", "B"),
    }  # B took the other three and is now idle, long-polling
    # A holds its leases (by heartbeats) well past their first expiry: B gets none of them.
    hold_until = max(when for _, _, _, when in started) + 1.5 * LEASE
    early = await events.client.blpop([events.key], timeout=max(0.1, hold_until - time.time()))
    assert early is None, f"redelivered while its worker was alive: {early}"
    killed_at = time.time()
    await first.kill()

    redelivered = await events.take(6, within=LEASE + 5)
    assert {task_id for _, task_id, _, _ in redelivered} == held
    assert all(name == "B" for _, _, name, _ in redelivered)
    # The promise: back within the lease duration + 1 s of the crash.
    assert max(when for _, _, _, when in redelivered) - killed_at <= LEASE + 1.0
    # ... and not before: A's heartbeats held the leases until the kill. The last one may have
    # been sent up to a heartbeat interval (LEASE / 3) before it.
    assert min(when for _, _, _, when in redelivered) - killed_at >= LEASE * 2 / 3 - 0.1
    second.send(signal.SIGTERM)
    assert await second.wait() == 0
    for task_id in ids:
        info = await get_task(inspect_stub, queue, task_id)
        assert (info.state, info.result) == (task_pb2.TASK_STATE_COMPLETED, b"B")
    counts = await stats(inspect_stub, queue)
    assert (counts.pending, counts.active, counts.retry, counts.completed) == (0, 0, 0, 6)


async def test_sigterm_lets_running_tasks_finish_requeues_the_rest_and_exits_zero(
    broker_stub: Any, inspect_stub: Any, spawn_worker: Any, events: Events, queue: str
) -> None:
    finishing = [await enqueue(broker_stub, "wait:sync", queue, retention=retention())
                 for _ in range(2)]  # fmt: skip
    stuck = [await enqueue(broker_stub, kind, queue) for kind in ("stuck:async", "stuck:sync")]
    waiting = [await enqueue(broker_stub, "job", queue) for _ in range(2)]
    worker = await spawn_worker(name="A", args=["--concurrency", "4", "--shutdown-timeout", "1"])
    started = await events.take(4)
    assert {task_id for _, task_id, _, _ in started} == {*finishing, *stuck}

    stopping_at = time.monotonic()
    worker.send(signal.SIGTERM)
    await worker.wait_log("shutting down")
    await events.release(2)  # the running sync tasks may now finish
    assert await worker.wait(within=10) == 0
    assert time.monotonic() - stopping_at < 5

    for task_id in finishing:
        info = await get_task(inspect_stub, queue, task_id)
        assert (info.state, info.result) == (task_pb2.TASK_STATE_COMPLETED, b"A")
    for task_id in [*stuck, *waiting]:
        info = await get_task(inspect_stub, queue, task_id)
        assert (info.state, info.retried) == (task_pb2.TASK_STATE_PENDING, 0)
    counts = await stats(inspect_stub, queue)
    assert (counts.active, counts.pending, counts.completed) == (0, 4, 2)
    finished = await events.take(2)
    assert {task_id for what, task_id, _, _ in finished if what == "done"} == set(finishing)
    assert await events.client.llen(events.key) == 0  # the waiting tasks never started


async def test_a_paused_worker_whose_lease_was_lost_does_not_report_the_task(
    broker_stub: Any, inspect_stub: Any, spawn_worker: Any, events: Events, queue: str
) -> None:
    task_id = await enqueue(broker_stub, "job", queue, retention=retention())
    lease_args = ["--lease-duration", "1", "--concurrency", "1"]
    paused = await spawn_worker(name="A", mode="sleep", args=lease_args)
    assert (await events.next())[:3] == ("start", task_id, "A")
    paused.send(signal.SIGSTOP)

    other = await spawn_worker(name="B", args=lease_args)
    assert [event[:3] for event in await events.take(2)] == [
        ("start", task_id, "B"),
        ("done", task_id, "B"),
    ]
    paused.send(signal.SIGCONT)
    await paused.wait_log("outcome not reported", task_id=task_id)
    for worker in (paused, other):
        worker.send(signal.SIGTERM)
        assert await worker.wait() == 0
    assert not [log for log in paused.logs if log["event"] == "outcome refused"]
    info = await get_task(inspect_stub, queue, task_id)
    assert (info.state, info.result) == (task_pb2.TASK_STATE_COMPLETED, b"B")


async def test_a_second_signal_exits_at_once(
    broker_stub: Any, spawn_worker: Any, events: Events, queue: str
) -> None:
    await enqueue(broker_stub, "stuck:async", queue)
    worker = await spawn_worker(name="A", args=["--shutdown-timeout", "60"])
    await events.next()
    worker.send(signal.SIGTERM)
    await worker.wait_log("waiting for running tasks")
    worker.send(signal.SIGINT)
    worker.expect_exit(128 + signal.SIGINT)
    assert await worker.wait(within=5) == 128 + signal.SIGINT
