"""Helpers for worker tests: enqueue and inspect through the raw generated stubs."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import inspect_service_pb2 as ipb
from leasq.v1 import task_pb2
from leasq_worker import Worker

HERE = Path(__file__).parent


async def stop(worker: Worker) -> None:
    """Stop ``worker`` and wait until it has reported every outcome."""
    worker.stop()
    await worker.stopped()


async def enqueue(stub: Any, task_type: str, queue: str, **fields: Any) -> str:
    """Enqueue one task through the raw BrokerService stub; its id."""
    spec = task_pb2.TaskSpec(type=task_type, queue=queue, **fields)
    response = await stub.Enqueue(pb.EnqueueRequest(task=spec))
    return str(response.task.id)


async def enqueue_many(stub: Any, specs: list[task_pb2.TaskSpec]) -> list[str]:
    """Enqueue specs in batches of 1,000; their ids in order."""
    ids: list[str] = []
    for start in range(0, len(specs), 1000):
        response = await stub.EnqueueBatch(
            pb.EnqueueBatchRequest(tasks=specs[start : start + 1000])
        )
        assert response.enqueued_count == len(specs[start : start + 1000])
        ids += [result.task.id for result in response.results]
    return ids


async def get_task(stub: Any, queue: str, task_id: str) -> task_pb2.TaskInfo:
    """The task as the broker records it (raises NOT_FOUND when it is gone)."""
    request = ipb.GetTaskRequest(queue=queue, task_id=task_id)
    response = await stub.GetTask(request, wait_for_ready=True)
    return response.task


async def stats(stub: Any, queue: str) -> ipb.QueueStats:
    """Counts per state of ``queue``."""
    response = await stub.GetQueueStats(ipb.GetQueueStatsRequest(queue=queue))
    return response.stats


class Events:
    """The event list that ``worker_apps.events`` handlers push to, read with BLPOP."""

    def __init__(self, client: Any, key: str) -> None:
        self.client = client
        self.key = key

    async def next(self, within: float = 15) -> tuple[str, str, str, float]:
        """The next event as (what, task id, worker name, unix time)."""
        item = await self.client.blpop([self.key], timeout=within)
        assert item is not None, f"no event within {within}s"
        what, task_id, name, when = item[1].decode().split()
        return what, task_id, name, float(when)

    async def take(self, count: int, within: float = 15) -> list[tuple[str, str, str, float]]:
        return [await self.next(within) for _ in range(count)]

    async def release(self, count: int) -> None:
        """Let ``count`` ``wait:sync`` handlers return."""
        await self.client.rpush(self.key + ":release", *["go"] * count)


class WorkerProcess:
    """``python -m leasq_worker worker_apps.events:registry`` as a subprocess with JSON logs."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.logs: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(
        cls, broker: str, queue: str, events: Events, *, name: str, mode: str = "normal",
        redis_url: str, args: Sequence[str] = (),
    ) -> WorkerProcess:  # fmt: skip
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
            "WORKER_TEST_REDIS": redis_url,
            "WORKER_TEST_EVENTS": events.key,
            "WORKER_TEST_NAME": name,
            "WORKER_TEST_MODE": mode,
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "leasq_worker", "worker_apps.events:registry",
            "--broker", broker, "--queue", queue, "--log-format", "json", *args,
            env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        worker = cls(process)
        await worker.wait_log("worker started")
        return worker

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for line in self.process.stderr:
            try:
                self.logs.append(json.loads(line))
            except json.JSONDecodeError:
                self.logs.append({"event": "(text)", "line": line.decode(errors="replace")})
            self._changed.set()
        self._changed.set()

    async def wait_log(self, event: str, within: float = 15, **fields: Any) -> dict[str, Any]:
        """The first log record with this event (and fields), waiting for it if need be."""

        async def find() -> dict[str, Any]:
            while True:
                for record in self.logs:
                    if record.get("event") == event and fields.items() <= record.items():
                        return record
                if self._reader.done():
                    raise AssertionError(f"worker exited without logging {event!r}: {self.logs}")
                self._changed.clear()
                await self._changed.wait()

        try:
            return await asyncio.wait_for(find(), within)
        except TimeoutError:
            message = f"no {event!r} {fields} logged within {within}s: {self.logs}"
            raise AssertionError(message) from None

    def send(self, sig: int) -> None:
        self.process.send_signal(sig)

    async def wait(self, within: float = 15) -> int:
        code = await asyncio.wait_for(self.process.wait(), within)
        await self._reader
        return code

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        await self._reader
