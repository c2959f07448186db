"""Fixtures for worker tests: in-process workers on a real broker, and task helpers.

``tests/worker`` is put on ``sys.path`` so that ``worker_apps`` (handler modules for worker
subprocesses and for process-pool children) imports by name everywhere.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from broker_process import BrokerHandle

from leasq_worker import Registry, Worker

HERE = Path(__file__).parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

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
