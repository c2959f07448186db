"""Fixtures for live-worker tests: a broker whose workers expire after a short TTL, raw stubs on
it, and ``leasq worker`` subprocesses that report what their handlers do through Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc.aio
import pytest
import redis.asyncio
from broker_process import BrokerFactory, BrokerHandle
from worker_testing import Events, WorkerProcess

from leasq.v1 import broker_service_pb2_grpc, inspect_service_pb2_grpc

#: Seconds a worker stays listed after its latest call, in these tests (60 by default).
TTL = 3.0

SpawnWorker = Callable[..., Awaitable[WorkerProcess]]


@pytest.fixture
def worker_ttl() -> float:
    """Seconds a worker stays listed after its latest call, in these tests."""
    return TTL


@pytest.fixture
def broker(broker_factory: BrokerFactory) -> BrokerHandle:
    """A broker that forgets a worker ``TTL`` seconds after its latest call."""
    return broker_factory(worker_ttl=TTL)


@pytest.fixture
async def stubs(broker: BrokerHandle) -> AsyncIterator[tuple[Any, Any]]:
    """(BrokerService, InspectService) stubs on ``broker``."""
    async with grpc.aio.insecure_channel(broker.address) as channel:
        yield (broker_service_pb2_grpc.BrokerServiceStub(channel),
               inspect_service_pb2_grpc.InspectServiceStub(channel))


@pytest.fixture
def queue() -> str:
    """A queue name of this test's own."""
    return f"q-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def events(signals_redis: str) -> AsyncIterator[Events]:
    """The event list worker subprocesses report to (on a plain Redis, also in cluster mode)."""
    client = redis.asyncio.Redis.from_url(signals_redis)
    try:
        yield Events(client, f"worker-test-events:{uuid.uuid4().hex[:8]}")
    finally:
        await client.aclose()


@pytest.fixture
async def spawn_worker(broker: BrokerHandle, events: Events, signals_redis: str, queue: str
                       ) -> AsyncIterator[SpawnWorker]:  # fmt: skip
    """``await spawn_worker(args=[...])``: a ``leasq worker`` subprocess serving ``queue``
    with the ``worker_apps.events`` handlers. Any still running at teardown is killed."""
    spawned: list[WorkerProcess] = []

    async def spawn(*, name: str = "w", args: list[str] | None = None) -> WorkerProcess:
        worker = await WorkerProcess.start(broker.address, queue, events, name=name,
                                           redis_url=signals_redis, args=args or [])
        spawned.append(worker)
        return worker

    yield spawn
    for worker in spawned:
        await worker.kill()
