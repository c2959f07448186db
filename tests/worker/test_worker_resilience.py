"""A worker rides out a broker restart, and wakes for new work without polling."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
import pytest
from broker_process import BrokerHandle
from google.protobuf import duration_pb2
from waiting import MARGIN, SETTLE, within
from worker_testing import enqueue, get_task, stop

from leasq.v1 import broker_service_pb2_grpc, task_pb2
from leasq_sdk.channel import MAX_RECONNECT_BACKOFF_MS
from leasq_worker import CallNext, Registry, Task, Worker

POLL = 30.0  # a long poll longer than any wait below
# The channel's longest pause between connection attempts, with gRPC's 20% jitter.
RECONNECT = MAX_RECONNECT_BACKOFF_MS / 1000 * 1.2


async def test_an_outcome_is_reported_once_the_broker_is_back(
    broker: BrokerHandle, broker_stub: Any, inspect_stub: Any, start_worker: Any, queue: str
) -> None:
    registry = Registry()
    started, release, finished = asyncio.Event(), asyncio.Event(), asyncio.Event()

    @registry.middleware
    async def after(task: Task, call_next: CallNext) -> Any:
        result = await call_next(task)
        finished.set()  # the outcome is now waiting to be reported
        return result

    @registry.handler("job")
    async def job(task: Task) -> str:
        started.set()
        await release.wait()
        return "done"

    task_id = await enqueue(broker_stub, "job", queue, retention=duration_pb2.Duration(seconds=60))
    # A short long-poll, so the broker's graceful stop need not wait for it.
    worker = await start_worker(registry, queues=[queue], poll_wait=0.5)
    await within(SETTLE, started.wait(), "the handler never started")
    await broker.stop_async()
    release.set()
    await within(SETTLE, finished.wait(), "the handler did not finish while the broker was down")
    await broker.restart_async()
    await stop(worker)

    info = await get_task(inspect_stub, queue, task_id)
    assert (info.state, info.result) == (task_pb2.TASK_STATE_COMPLETED, b"done")


async def test_an_idle_worker_starts_a_new_task_at_once_not_at_its_next_poll(
    broker_stub: Any, start_worker: Any, queue: str
) -> None:
    registry = Registry()
    started: asyncio.Queue[float] = asyncio.Queue()

    @registry.handler("job")
    async def job(task: Task) -> None:
        started.put_nowait(time.monotonic())

    worker = await start_worker(registry, queues=[queue], poll_wait=POLL)
    await enqueue(broker_stub, "job", queue)  # the first task: the worker is up and polling
    await within(SETTLE, started.get(), "the first task never started")
    delays = []
    for _ in range(5):
        enqueued = time.monotonic()
        await enqueue(broker_stub, "job", queue)
        delays.append(await within(MARGIN, started.get(), "a task did not start") - enqueued)
    await stop(worker)
    # A fixed-interval poll would take up to its interval (30 s): a wake-up takes a round trip.
    assert max(delays) < MARGIN < POLL


async def test_a_worker_whose_leases_are_refused_stops_with_the_brokers_error(
    broker: BrokerHandle,
) -> None:
    worker = Worker(Registry(), broker=broker.address, queues=["no{braces}"], handle_signals=False)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await asyncio.wait_for(worker.run(), 10)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_worker_takes_work_from_a_restarted_broker_within_about_a_second(
    broker: BrokerHandle, start_worker: Any, queue: str
) -> None:
    registry = Registry()
    ran = asyncio.Event()

    @registry.handler("job")
    async def job(task: Task) -> None:
        ran.set()

    worker = await start_worker(registry, queues=[queue], poll_wait=1)
    await broker.stop_async()
    await asyncio.sleep(4.0)  # the outage itself, not a synchronisation
    await asyncio.to_thread(broker.start)
    back = time.monotonic()
    # A fresh channel for the enqueue, so that only the worker's reconnection is measured.
    async with grpc.aio.insecure_channel(broker.address) as channel:
        await enqueue(broker_service_pb2_grpc.BrokerServiceStub(channel), "job", queue)
    # The Lease waits for the connection and is sent the moment it is up.
    await within(RECONNECT + MARGIN, ran.wait(), "the worker did not reach the restarted broker")
    assert time.monotonic() - back < RECONNECT + MARGIN
    await stop(worker)
