"""The Node.js example worker (examples/node) as operators see it: it sends WorkerMeta, and
honours QUIET (no more leasing, the held task finishes, the process stays up) and STOP (exit 0).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from broker_process import BrokerHandle
from google.protobuf import duration_pb2
from waiting import MARGIN, SETTLE, eventually, within

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import inspect_service_pb2 as ipb
from leasq.v1 import task_pb2
from leasq_sdk import AsyncClient, WorkerCommand, WorkerInfo

NODE_DIR = Path(__file__).resolve().parents[2] / "examples" / "node"


class NodeWorker:
    """``node examples/node/worker.js``: its JSON event lines as they arrive."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.events: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            try:
                self.events.append(json.loads(line))
            except ValueError:
                self.events.append({"event": "(text)", "line": line.decode(errors="replace")})
            self._changed.set()
        self._changed.set()

    async def wait_event(self, name: str, within_s: float = SETTLE) -> dict[str, Any]:
        async def find() -> dict[str, Any]:
            while True:
                for event in self.events:
                    if event.get("event") == name:
                        return event
                if self._reader.done():
                    raise AssertionError(f"node worker exited without {name!r}: {self.events}")
                self._changed.clear()
                await self._changed.wait()

        return await within(within_s, find(), lambda: f"no {name!r} event: {self.events}")


@pytest.fixture
async def node_worker(broker: BrokerHandle) -> Any:
    node = shutil.which("node")
    if node is None or not (NODE_DIR / "node_modules" / "@grpc" / "grpc-js").is_dir():
        pytest.skip("needs node and examples/node/node_modules (make node-deps)")
    started: list[NodeWorker] = []

    async def start(worker_id: str, queue: str) -> NodeWorker:
        process = await asyncio.create_subprocess_exec(
            node, str(NODE_DIR / "worker.js"), "--broker", broker.address, "--queues", queue,
            "--worker-id", worker_id, "--concurrency", "2", "--poll-wait", "1s",
            "--lease-duration", "3s", "--shutdown-grace", "10s",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL)
        worker = NodeWorker(process)
        started.append(worker)
        await worker.wait_event("ready")
        return worker

    yield start
    for worker in started:
        if worker.process.returncode is None:
            worker.process.kill()
            await worker.process.wait()


async def _listed(client: AsyncClient, worker_id: str) -> WorkerInfo | None:
    return next((w for w in await client.list_workers() if w.worker_id == worker_id), None)


async def test_the_node_worker_sends_its_meta_and_honours_quiet_then_stop(
    node_worker: Any, broker: BrokerHandle, stubs: tuple[Any, Any], queue: str
) -> None:
    stub, inspect = stubs
    keep = duration_pb2.Duration(seconds=300)
    spec = task_pb2.TaskSpec(type="report:generate", queue=queue, payload=b'{"ms": 2500}',
                             retention=keep)
    held = (await stub.Enqueue(pb.EnqueueRequest(task=spec))).task.id
    worker_id = f"node-{uuid.uuid4().hex[:8]}"
    worker = await node_worker(worker_id, queue)
    await worker.wait_event("started")

    async with AsyncClient(broker.address) as client:
        info = await eventually(lambda: _listed(client, worker_id), SETTLE, "node worker listed")
        assert (info.pid, info.concurrency) == (worker.process.pid, 2)
        assert info.sdk.startswith("node/") and info.host and info.started_at is not None
        assert [t.task_id for t in info.tasks] == [held]

        await client.quiet_worker(worker_id)
        await worker.wait_event("quiet", 1 + 2 * MARGIN)  # within a heartbeat or long poll
        spec = task_pb2.TaskSpec(type="email:welcome", queue=queue, payload=b'{"to": "a@b"}')
        later = (await stub.Enqueue(pb.EnqueueRequest(task=spec))).task.id
        await worker.wait_event("acked")
        acked_at = datetime.now(UTC)

        async def seen_since() -> WorkerInfo | None:
            found = await _listed(client, worker_id)
            return found if found and found.last_seen_at and found.last_seen_at > acked_at \
                else None

        quiet = await eventually(seen_since, 2 + 2 * MARGIN, "heartbeats of the quiet worker")
        assert (quiet.command, quiet.tasks) == (WorkerCommand.QUIET, [])
        task = (await inspect.GetTask(ipb.GetTaskRequest(queue=queue, task_id=later))).task
        assert task.state == task_pb2.TASK_STATE_PENDING
        assert worker.process.returncode is None

        await client.stop_worker(worker_id)
        await worker.wait_event("stop_requested", 1 + 2 * MARGIN)
        assert await within(SETTLE, worker.process.wait(), "node worker exit") == 0
        await worker.wait_event("stopped")
