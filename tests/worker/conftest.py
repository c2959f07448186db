"""Fixtures for worker tests: in-process workers and worker subprocesses on a real broker.

``tests/worker`` is on pytest's ``pythonpath``, so ``worker_apps`` (handler modules for worker
subprocesses and process-pool children) and ``worker_testing`` import by name.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
import redis.asyncio
from broker_process import BrokerHandle, broker_environment, overrides_to_flags
from process_checks import check_stopped, fail_on_problems
from worker_testing import Events, WorkerProcess, stop_within

from leasq_worker import Registry, Worker

StartProcess = Callable[..., Awaitable[WorkerProcess]]


StartWorker = Callable[..., Awaitable[Worker]]


@pytest.fixture(scope="module")
def broker(redis_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerHandle]:
    """One broker per test module, on the session Redis without flushing it.

    Worker tests each use queues of their own, so they cannot see each other's tasks; sharing
    the broker saves a broker start per test. (Overrides the per-test ``broker`` fixture.)
    """
    flags = overrides_to_flags({"redis_url": redis_server, "log_format": "json"})
    handle = BrokerHandle(
        flags, workdir=tmp_path_factory.mktemp("worker-broker"), redis_url=redis_server,
        data_dir=None, env=broker_environment(),
    )  # fmt: skip
    handle.start()
    try:
        yield handle
    finally:
        handle.stop()
    check_stopped(handle)


@pytest.fixture
def queue() -> str:
    """A queue name of this test's own."""
    return f"q-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def start_worker(broker: BrokerHandle) -> AsyncIterator[StartWorker]:
    """``await start_worker(registry, **options)``: a Worker serving in this event loop.

    Every worker is stopped gracefully at teardown (which also proves it can stop): its
    ``run()`` must then end in time (``stop_within``) and without an exception, else the test
    fails. (Its error-level log lines are checked by ``local_logs``.)
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
    problems: list[str] = []
    for worker, task in running:
        bound = stop_within(worker)
        done, _ = await asyncio.wait({task}, timeout=bound)
        if not done:
            task.cancel()
            problems.append(f"worker {worker.id}: run() still running {bound:g}s after stop()")
        elif not task.cancelled() and task.exception() is not None:
            problems.append(f"worker {worker.id}: run() raised {task.exception()!r}")
    fail_on_problems(problems, "in-process workers did not stop cleanly")


@pytest.fixture
async def events(signals_redis: str) -> AsyncIterator[Events]:
    """The event list worker subprocesses report to (on the signals Redis, not flushed)."""
    client = redis.asyncio.Redis.from_url(signals_redis)
    try:
        yield Events(client, f"worker-test-events:{uuid.uuid4().hex[:8]}")
    finally:
        await client.aclose()


@pytest.fixture
async def spawn_worker(
    broker: BrokerHandle, events: Events, signals_redis: str, queue: str
) -> AsyncIterator[StartProcess]:
    """``await spawn_worker(name=..., mode=..., args=[...])``: a worker subprocess on ``queue``.

    Any still running at teardown is killed.
    """
    spawned: list[WorkerProcess] = []

    async def spawn(*, name: str, mode: str = "normal", args: list[str] | None = None) -> Any:
        worker = await WorkerProcess.start(
            broker.address, queue, events, name=name, mode=mode, redis_url=signals_redis,
            args=args or [],
        )  # fmt: skip
        spawned.append(worker)
        return worker

    yield spawn
    for worker in spawned:
        await worker.kill()
