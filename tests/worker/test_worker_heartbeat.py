"""The heartbeat loop holds every lease for as long as its handler runs, in one call per beat.

A handler that runs for three times its lease must complete once, be acked, never be
redelivered (the worker has a free slot that would take the task again) and never count as a
lost lease. The broker's access log (debug level) counts the Heartbeat calls: one per interval
for all leases together, not one per lease.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import grpc.aio
import pytest
from broker_process import BrokerHandle, broker_environment, overrides_to_flags
from google.protobuf import duration_pb2
from worker_testing import enqueue, get_task

from leasq.v1 import broker_service_pb2_grpc, inspect_service_pb2_grpc, task_pb2
from leasq_worker import Registry, Task, Worker

LEASE = 1.0  # the shortest lease the broker grants
RUN = 3 * LEASE  # each handler runs this long
INTERVAL = LEASE / 3  # the default heartbeat interval


@pytest.fixture
def debug_broker(redis_server: str, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[BrokerHandle]:  # fmt: skip
    """A broker that logs every call (debug level), under a key prefix of its own."""
    workdir = tmp_path_factory.mktemp("heartbeat-broker")
    flags = overrides_to_flags({"redis_url": redis_server, "log_format": "json",
                                "log_level": "debug", "key_prefix": f"hb{uuid.uuid4().hex[:8]}"})
    handle = BrokerHandle(flags, workdir=workdir, redis_url=redis_server, data_dir=None,
                          env=broker_environment())  # fmt: skip
    handle.start()
    try:
        yield handle
    finally:
        handle.stop()


def _heartbeat_calls(broker: BrokerHandle) -> list[str]:
    """Status codes of the Heartbeat calls in the broker's access log (stops the broker first:
    a call's line is written after its answer)."""
    assert broker.stop() == 0
    codes = []
    for line in broker.log_text().splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("event") == "rpc" and entry.get("method", "").endswith("/Heartbeat"):
                codes.append(entry["code"])
    return codes


async def test_handlers_running_three_times_their_lease_complete_once_held_by_heartbeats(
    debug_broker: BrokerHandle,
) -> None:
    queue = f"hb-{uuid.uuid4().hex[:8]}"
    registry = Registry()
    runs: Counter[str] = Counter()

    @registry.handler("slow:async")
    async def slow_async(task: Task) -> str:
        runs[task.id] += 1
        await asyncio.sleep(RUN)
        return "async"

    @registry.handler("slow:sync")
    def slow_sync(task: Task) -> str:  # a pool thread: the event loop stays free
        runs[task.id] += 1
        threading.Event().wait(RUN)
        return "sync"

    async with grpc.aio.insecure_channel(debug_broker.address) as channel:
        stub = broker_service_pb2_grpc.BrokerServiceStub(channel)
        inspect = inspect_service_pb2_grpc.InspectServiceStub(channel)
        keep = duration_pb2.Duration(seconds=300)
        ids = [await enqueue(stub, kind, queue, retention=keep)
               for kind in ("slow:async", "slow:async", "slow:sync")]  # fmt: skip
        # A fourth slot stays free: a lease that expired would be leased again right here.
        worker = Worker(registry, broker=debug_broker.address, queues=[queue], concurrency=4,
                        lease_duration=LEASE, poll_wait=1, handle_signals=False)  # fmt: skip
        running = asyncio.create_task(worker.run())
        started = time.monotonic()
        try:
            for task_id in ids:
                await _wait_until_completed(inspect, queue, task_id, runs, within=RUN + 5)
        finally:
            worker.stop()
            await asyncio.wait_for(running, 10)
        took = time.monotonic() - started
        infos = [await get_task(inspect, queue, task_id) for task_id in ids]

    assert runs == dict.fromkeys(ids, 1), "a task ran twice: its lease was not held"
    for info, result in zip(infos, (b"async", b"async", b"sync"), strict=True):
        assert (info.state, info.result) == (task_pb2.TASK_STATE_COMPLETED, result)
        assert (info.lease_lost_count, info.retried) == (0, 0)
    beats = await asyncio.to_thread(_heartbeat_calls, debug_broker)
    assert set(beats) == {"OK"}
    # One call per interval for the three leases together: about RUN / INTERVAL = 9 calls.
    # A call per lease would be about 27; no heartbeats at all would have lost the leases.
    assert RUN / INTERVAL / 2 <= len(beats) <= took / INTERVAL + 2, beats


async def _wait_until_completed(
    inspect: Any, queue: str, task_id: str, runs: Counter[str], within: float
) -> None:
    """Wait for the task to complete; fail at once when any task starts a second time."""
    give_up = time.monotonic() + within
    while (info := await get_task(inspect, queue, task_id)).state != task_pb2.TASK_STATE_COMPLETED:
        assert max(runs.values(), default=0) <= 1, f"a task was redelivered while it ran: {runs}"
        assert time.monotonic() < give_up, f"task {task_id} not completed within {within}s: {info}"
        await asyncio.sleep(0.05)


async def test_a_lease_outlives_a_broker_restart_shorter_than_half_the_lease_less_a_second(
    debug_broker: BrokerHandle,
) -> None:
    """README: a lease survives a broker outage (stop to serving again) when the lease
    duration > 2 x (outage + 1 s). Here an 8 s lease, and a restart (stop to serving again)
    that spans a heartbeat and takes 1-2 s on a loaded 2-core machine (at most 3 s allowed)."""
    lease = 8.0
    queue = f"hb-{uuid.uuid4().hex[:8]}"
    registry = Registry()
    runs: Counter[str] = Counter()
    started, release = asyncio.Event(), asyncio.Event()

    @registry.handler("long")
    async def long(task: Task) -> str:
        runs[task.id] += 1
        started.set()
        await release.wait()
        return "once"

    async with grpc.aio.insecure_channel(debug_broker.address) as channel:
        stub = broker_service_pb2_grpc.BrokerServiceStub(channel)
        inspect = inspect_service_pb2_grpc.InspectServiceStub(channel)
        task_id = await enqueue(stub, "long", queue, retention=duration_pb2.Duration(seconds=300))
        # A free slot would take the task again if its lease were lost; a short long poll lets
        # the broker stop at once.
        worker = Worker(registry, broker=debug_broker.address, queues=[queue], concurrency=2,
                        lease_duration=lease, poll_wait=0.5, handle_signals=False)  # fmt: skip
        running = asyncio.create_task(worker.run())
        try:
            await asyncio.wait_for(started.wait(), 10)
            # Find when heartbeats are sent (each moves the expiry), and stop the broker just
            # before one is due, so that the outage spans it.
            granted = (await get_task(inspect, queue, task_id)).lease_expires_at
            first_expiry = await _next_expiry(inspect, queue, task_id, granted, within=lease)
            beat_at = time.monotonic()
            await asyncio.sleep(max(0.0, lease / 3 - 0.5 - (time.monotonic() - beat_at)))
            stopped = time.monotonic()
            await debug_broker.stop_async()
            await asyncio.to_thread(debug_broker.start)
            outage = time.monotonic() - stopped
            assert lease > 2 * (outage + 1), f"the restart took {outage:.1f}s: too long to check"
            # Hold the task past the expiry of the lease it was granted with.
            until = first_expiry.ToNanoseconds() / 1e9 + 0.5
            while time.time() < until:
                info = await get_task(inspect, queue, task_id)
                assert runs[task_id] == 1, "the task was redelivered during the outage"
                assert (info.state, info.lease_lost_count) == (task_pb2.TASK_STATE_ACTIVE, 0)
                await asyncio.sleep(0.1)
            release.set()
            await _wait_until_completed(inspect, queue, task_id, runs, within=5)
        finally:
            release.set()
            worker.stop()
            await asyncio.wait_for(running, 15)
        info = await get_task(inspect, queue, task_id)
    assert runs == {task_id: 1}
    assert (info.result, info.lease_lost_count, info.retried) == (b"once", 0, 0)


async def _next_expiry(inspect: Any, queue: str, task_id: str, current: Any, within: float
                       ) -> Any:  # fmt: skip
    """The lease expiry after the next heartbeat moves it from ``current``."""
    give_up = time.monotonic() + within
    while (expiry := (await get_task(inspect, queue, task_id)).lease_expires_at) == current:
        assert time.monotonic() < give_up, f"no heartbeat within {within}s"
        await asyncio.sleep(0.02)
    return expiry
