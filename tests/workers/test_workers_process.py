"""A real ``leasq worker`` process as operators see it: listed with its meta, queues and held
tasks; told to go quiet it leases no more, finishes what it holds and stays up; told to stop it
finishes its task and exits 0.

The worker's handler ``wait:sync`` runs until the test releases it (``events.release``), so a
task is held exactly as long as the test wants.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf import duration_pb2
from waiting import MARGIN, SETTLE, eventually
from worker_testing import Events, WorkerProcess, enqueue, get_task

from leasq.v1 import task_pb2
from leasq_sdk import AsyncClient, WorkerCommand, WorkerInfo

SpawnWorker = Callable[..., Awaitable[WorkerProcess]]
KEEP = duration_pb2.Duration(seconds=300)  # completed tasks stay readable


async def _listed(client: AsyncClient, worker_id: str) -> WorkerInfo | None:
    return next((w for w in await client.list_workers() if w.worker_id == worker_id), None)


async def _spawn(spawn_worker: SpawnWorker, *extra: str) -> tuple[WorkerProcess, str]:
    worker_id = f"proc-{uuid.uuid4().hex[:8]}"
    worker = await spawn_worker(args=["--worker-id", worker_id, "--concurrency", "3",
                                      "--lease-duration", "6", *extra])
    return worker, worker_id


async def test_a_worker_process_is_listed_with_its_meta_queues_and_held_tasks(
    spawn_worker: SpawnWorker, stubs: tuple[Any, Any], events: Events, queue: str,
    broker: Any,
) -> None:
    stub, _ = stubs
    ids = sorted([await enqueue(stub, "wait:sync", queue) for _ in range(2)])
    before = datetime.now(UTC)
    worker, worker_id = await _spawn(spawn_worker, "--queue", "side-queue=5")
    started = sorted(task_id for _, task_id, _, _ in await events.take(2))
    assert started == ids

    async with AsyncClient(broker.address) as client:
        info = await eventually(lambda: _listed(client, worker_id), SETTLE, "worker listed")
        assert (info.host, info.pid, info.concurrency) == (socket.gethostname(),
                                                           worker.process.pid, 3)
        assert info.sdk.startswith("leasq-python/")
        assert info.started_at is not None
        assert before - timedelta(seconds=5) <= info.started_at <= datetime.now(UTC)
        assert info.queues == [(queue, 1), ("side-queue", 5)]
        assert not info.strict
        assert info.command is WorkerCommand.NONE
        assert info.first_seen_at is not None and info.last_seen_at is not None
        assert info.first_seen_at <= info.last_seen_at <= datetime.now(UTC) + timedelta(seconds=1)
        assert sorted(t.task_id for t in info.tasks) == ids
        for task in info.tasks:
            assert (task.queue, task.type) == (queue, "wait:sync")
            assert task.leased_at is not None and task.lease_expires_at is not None
            assert before - timedelta(seconds=1) <= task.leased_at <= datetime.now(UTC)
            assert task.lease_expires_at > task.leased_at
        assert [t.leased_at for t in info.tasks] == sorted(t.leased_at for t in info.tasks)

        await events.release(2)
        for _ in range(2):
            assert (await events.next())[0] == "done"

        async def idle() -> WorkerInfo | None:
            found = await _listed(client, worker_id)
            return found if found is not None and not found.tasks else None

        # Idle, it stays listed (its long polls and heartbeats count) and holds nothing.
        await eventually(idle, SETTLE, "the idle worker is listed without tasks")


async def test_quiet_stops_leasing_held_tasks_finish_and_the_process_stays_up(
    spawn_worker: SpawnWorker, stubs: tuple[Any, Any], events: Events, queue: str,
    broker: Any,
) -> None:
    stub, inspect = stubs
    held = await enqueue(stub, "wait:sync", queue, retention=KEEP)
    worker, worker_id = await _spawn(spawn_worker, "--heartbeat-interval", "0.5")
    assert (await events.next())[:2] == ("start", held)

    async with AsyncClient(broker.address) as client:
        await eventually(lambda: _listed(client, worker_id), SETTLE, "worker listed")
        quieted = await client.quiet_worker(worker_id)
        assert quieted.command is WorkerCommand.QUIET
        assert [t.task_id for t in quieted.tasks] == [held]
        await worker.wait_log("quieted by an operator: leasing stopped, held tasks finish")

        later = await enqueue(stub, "job", queue)
        await events.release(1)
        assert (await events.next())[:2] == ("done", held)

        async def completed() -> bool:
            info = await get_task(inspect, queue, held)
            return info.state == task_pb2.TASK_STATE_COMPLETED

        # The held task is reported (Ack): its lease_next would have taken the new task.
        await eventually(completed, SETTLE, "the held task completed")
        assert (await get_task(inspect, queue, later)).state == task_pb2.TASK_STATE_PENDING

        # The worker stays up and keeps being seen: heartbeats after the ack, still nothing
        # leased, the process still running, the command still QUIET.
        acked_at = datetime.now(UTC)

        async def seen_since() -> WorkerInfo | None:
            found = await _listed(client, worker_id)
            return found if found and found.last_seen_at and found.last_seen_at > acked_at \
                else None

        info = await eventually(seen_since, 2 + 2 * MARGIN, "heartbeats of the quiet worker")
        assert (info.command, info.tasks) == (WorkerCommand.QUIET, [])
        assert (await get_task(inspect, queue, later)).state == task_pb2.TASK_STATE_PENDING
        assert worker.process.returncode is None
        logs = [r for r in worker.logs if r.get("event", "").startswith("quieted by")]
        assert len(logs) == 1, "the quiet command is logged once"


async def test_stop_lets_the_held_task_finish_then_the_process_exits_0(
    spawn_worker: SpawnWorker, stubs: tuple[Any, Any], events: Events, queue: str,
    broker: Any,
) -> None:
    stub, inspect = stubs
    held = await enqueue(stub, "wait:sync", queue, retention=KEEP)
    worker, worker_id = await _spawn(spawn_worker, "--heartbeat-interval", "0.5",
                                     "--shutdown-timeout", "20")
    assert (await events.next())[:2] == ("start", held)

    async with AsyncClient(broker.address) as client:
        await eventually(lambda: _listed(client, worker_id), SETTLE, "worker listed")
        stopped = await client.stop_worker(worker_id)
        assert stopped.command is WorkerCommand.STOP
        told = time.monotonic()
        await worker.wait_log("stop requested by an operator: shutting down")
        # Heartbeats bring the command within an interval (long polls: at once).
        assert time.monotonic() - told < 0.5 + 2 * MARGIN
        await worker.wait_log("waiting for running tasks", tasks=1)
        assert worker.process.returncode is None, "it waits for its running task"
        later = await enqueue(stub, "job", queue)
        await events.release(1)
        assert (await events.next())[:2] == ("done", held)
        assert await worker.wait(SETTLE) == 0
        await worker.wait_log("worker stopped")
        assert (await get_task(inspect, queue, held)).state == task_pb2.TASK_STATE_COMPLETED
        assert (await get_task(inspect, queue, later)).state == task_pb2.TASK_STATE_PENDING


async def test_an_idle_worker_stays_listed_past_the_ttl_without_a_new_registration(
    spawn_worker: SpawnWorker, broker: Any, worker_ttl: float
) -> None:
    # No task at all: only its long polls (5 s waits, longer than the 3 s TTL here) and its
    # empty heartbeats keep it seen.
    _, worker_id = await _spawn(spawn_worker)
    async with AsyncClient(broker.address) as client:
        first = await eventually(lambda: _listed(client, worker_id), SETTLE, "worker listed")
        assert first.first_seen_at is not None

        async def seen_for_two_ttls() -> WorkerInfo | None:
            info = await _listed(client, worker_id)
            assert info is not None, "the idle worker was forgotten"
            assert info.first_seen_at == first.first_seen_at, "its registration lapsed"
            assert info.last_seen_at is not None
            span = (info.last_seen_at - first.first_seen_at).total_seconds()
            return info if span > 2 * worker_ttl else None

        await eventually(seen_for_two_ttls, 2 * worker_ttl + 2 + MARGIN,
                         "the idle worker was seen for two TTLs", interval=0.1)
