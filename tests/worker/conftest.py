"""Fixtures for worker tests: in-process workers and worker subprocesses on a real broker.

``tests/worker`` is on pytest's ``pythonpath``, so ``worker_apps`` (handler modules for worker
subprocesses and process-pool children) and ``worker_testing`` import by name.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from broker_process import BrokerHandle
from worker_testing import Events, WorkerProcess

from leasq_worker import Registry, Worker

StartProcess = Callable[..., Awaitable[WorkerProcess]]


StartWorker = Callable[..., Awaitable[Worker]]


@pytest.fixture
def queue() -> str:
    """A queue name of this test's own."""
    return f"q-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def start_worker(broker: BrokerHandle) -> AsyncIterator[StartWorker]:
    """``await start_worker(registry, **options)``: a Worker serving in this event loop.

    Every worker is stopped gracefully at teardown (which also proves it can stop).
    """
    running: list[tuple[Worker, asyncio.Task[None]]] = []

    async def start(registry: Registry, **options: Any) -> Worker:
        options.setdefault("handle_signals", False)
        worker = Worker(registry, broker=broker.address, **options)
        running.append((worker, asyncio.create_task(worker.run())))
        return worker

    yield start
    for worker, _ in running:
        worker.stop()
    for _, task in running:
        await asyncio.wait_for(task, 30)


@pytest.fixture
def events(redis_client: Any) -> Events:
    """The event list worker subprocesses report to."""
    return Events(redis_client, f"worker-test-events:{uuid.uuid4().hex[:8]}")


@pytest.fixture
async def spawn_worker(
    broker: BrokerHandle, events: Events, redis_url: str, queue: str
) -> AsyncIterator[StartProcess]:
    """``await spawn_worker(name=..., mode=..., args=[...])``: a worker subprocess on ``queue``.

    Any still running at teardown is killed.
    """
    spawned: list[WorkerProcess] = []

    async def spawn(*, name: str, mode: str = "normal", args: list[str] | None = None) -> Any:
        worker = await WorkerProcess.start(
            broker.address, queue, events, name=name, mode=mode, redis_url=redis_url,
            args=args or [],
        )  # fmt: skip
        spawned.append(worker)
        return worker

    yield spawn
    for worker in spawned:
        await worker.kill()
