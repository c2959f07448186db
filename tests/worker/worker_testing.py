"""Helpers for worker tests: enqueue and inspect through the raw generated stubs."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from process_checks import Expectations, unexpected_lines, watch
from waiting import MARGIN, within

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import inspect_service_pb2 as ipb
from leasq.v1 import task_pb2
from leasq_worker import Worker

HERE = Path(__file__).parent


def stop_within(worker: Worker) -> float:
    """The longest a graceful stop of ``worker`` may take: its long poll answering, running
    handlers finishing or being cut at the shutdown timeout, outcomes reported within a lease."""
    return worker.poll_wait + worker.shutdown_timeout + worker.lease_duration + 1 + MARGIN


async def stop(worker: Worker) -> None:
    """Stop ``worker`` and wait until it has reported every outcome."""
    worker.stop()
    await within(stop_within(worker), worker.stopped(), f"worker {worker.id} did not stop")


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
    """``python -m leasq_worker worker_apps.events:registry`` as a subprocess with JSON logs.

    Checked after each test (``process_checks``): an exit other than 0 that the test did not
    declare with :meth:`expect_exit`, or an error-level line or traceback it did not declare
    with :meth:`expect_log`, fails the test; :meth:`kill` (or ``send(SIGKILL)``) is never asked
    for its exit code.
    """

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.logs: list[dict[str, Any]] = []
        self.lines: list[str] = []  # stderr as written, for the checks
        self.expectations = Expectations()
        self._killed = False
        self._exit_checked = False
        self._lines_checked = 0
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())
        watch(self)

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
            self.lines.append(line.decode(errors="replace").rstrip("\r\n"))
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
        self._killed = self._killed or sig == signal.SIGKILL
        self.process.send_signal(sig)

    async def wait(self, within: float = 15) -> int:
        code = await asyncio.wait_for(self.process.wait(), within)
        await self._reader
        return code

    async def kill(self) -> None:
        if self.process.returncode is None:
            self._killed = True
            self.process.kill()
            await self.process.wait()
        await self._reader

    def expect_log(self, *patterns: str) -> None:
        """Allow error-level lines and tracebacks containing one of ``patterns``."""
        self.expectations.logs.extend(patterns)

    def expect_exit(self, *codes: int) -> None:
        """Allow these exit codes besides 0."""
        self.expectations.exits.update(codes)

    def describe(self) -> str:
        return f"worker subprocess {self.process.pid}"

    @property
    def finished(self) -> bool:
        return self._exit_checked and self._reader.done()

    def take_problems(self, patterns: Iterable[str] = ()) -> list[str]:
        """An unexpected exit code and the error lines since the last call."""
        problems: list[str] = []
        code = self.process.returncode
        if code is not None and not self._exit_checked:
            self._exit_checked = True
            problem = None if self._killed else self.expectations.exit_problem(code, "exited")
            problems += [problem] if problem else []
        new, self._lines_checked = self.lines[self._lines_checked :], len(self.lines)
        problems += unexpected_lines(new, (*patterns, *self.expectations.logs))
        self.expectations.reset()
        return problems
