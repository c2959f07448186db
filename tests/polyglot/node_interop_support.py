"""Processes that speak JSON lines, and the lookups the Node.js interop tests share.

The Node worker logs one JSON object per event on stdout, and the Python handlers used here
print one per task they see; a reader thread turns each line into an event, so a test waits for
exactly the event it needs instead of sleeping.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import grpc
import pytest

from leasq.v1 import inspect_service_pb2 as ipb
from leasq.v1 import inspect_service_pb2_grpc, task_pb2

REPO = Path(__file__).resolve().parents[2]
NODE_DIR = REPO / "examples" / "node"
HERE = Path(__file__).resolve().parent

Event = dict[str, Any]


def node_executable() -> str:
    """Path of `node`; skips the test where Node is absent, except in CI, where it fails."""
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI", "").lower() not in ("", "0", "false"):
            pytest.fail("node is not on PATH, and CI must run the Node.js interop tests")
        pytest.skip("node is not on PATH: the Node.js interop tests need Node.js 18 or newer")
    if not (NODE_DIR / "node_modules" / "@grpc" / "grpc-js").is_dir():
        pytest.fail("examples/node has no node_modules: run `make node-deps` (npm ci) first")
    return node


class JsonLineProcess:
    """A subprocess whose stdout lines are parsed as JSON events as they arrive."""

    def __init__(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> None:
        self.argv = list(argv)
        self.events: list[Event] = []
        self.raw: list[str] = []
        self._queue: queue.Queue[Event | None] = queue.Queue()
        self.proc = subprocess.Popen(
            self.argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.raw.append(line.rstrip("\n"))
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                self._queue.put(event)
        self._queue.put(None)  # end of output

    def wait_for(self, predicate: Callable[[Event], bool], timeout: float = 30.0) -> Event:
        """The first not-yet-consumed event matching ``predicate``; fails with the output."""
        for event in self.events:
            if predicate(event):
                self.events.remove(event)
                return event
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            try:
                item = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)  # keep the end mark for later waits
                break
            if predicate(item):
                return item
            self.events.append(item)
        raise AssertionError(f"{self.argv[:3]}: expected event not seen; output:\n{self.output()}")

    def wait_event(self, name: str, task_id: str | None = None, timeout: float = 30.0) -> Event:
        """The next event called ``name`` (for ``task_id``, when given)."""
        return self.wait_for(
            lambda e: e.get("event") == name and (task_id is None or e.get("task_id") == task_id),
            timeout,
        )

    def seen(self, name: str, task_id: str) -> bool:
        """Whether an event ``name`` for ``task_id`` was read (and not consumed) so far."""
        self._drain()
        return any(e.get("event") == name and e.get("task_id") == task_id for e in self.events)

    def _drain(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is None:
                self._queue.put(None)
                return
            self.events.append(item)

    def output(self) -> str:
        return "\n".join(self.raw[-200:])

    def send(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = 30.0) -> int:
        return self.proc.wait(timeout=timeout)

    def close(self) -> None:
        """Kills the process if it still runs (a test that failed half-way)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._reader.join(timeout=10)


def node_worker(node: str, broker: str, queues: str, *extra: str) -> JsonLineProcess:
    """Starts examples/node/worker.js and waits until it is ready to lease."""
    proc = JsonLineProcess(
        [
            node,
            str(NODE_DIR / "worker.js"),
            "--broker",
            broker,
            "--queues",
            queues,
            "--poll-wait",
            "1s",
            *extra,
        ]
    )
    proc.wait_event("ready", timeout=20)
    return proc


def python_worker(broker: str, queue_name: str) -> JsonLineProcess:
    """Starts the Python worker runtime with the handlers of interop_py_handlers.py."""
    env = {
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        "PYTHONUNBUFFERED": "1",
    }
    return JsonLineProcess(
        [
            sys.executable,
            "-m",
            "leasq_worker",
            "interop_py_handlers:registry",
            "--queue",
            queue_name,
            "--broker",
            broker,
        ],
        env=env,
    )


def run_node_producer(node: str, broker: str, *args: str) -> tuple[int, Event]:
    """Runs examples/node/producer.js once; returns its exit status and printed JSON."""
    done = subprocess.run(
        [node, str(NODE_DIR / "producer.js"), "--broker", broker, *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert lines, f"producer printed nothing; stderr:\n{done.stderr}"
    return done.returncode, json.loads(lines[-1])


def get_task(channel: grpc.Channel, queue_name: str, task_id: str) -> task_pb2.TaskInfo:
    stub = inspect_service_pb2_grpc.InspectServiceStub(channel)
    request = ipb.GetTaskRequest(queue=queue_name, task_id=task_id)
    response: ipb.GetTaskResponse = stub.GetTask(request, timeout=10)
    return response.task


def wait_for_state(
    channel: grpc.Channel,
    queue_name: str,
    task_id: str,
    state: task_pb2.TaskState.ValueType,
    timeout: float = 30.0,
) -> task_pb2.TaskInfo:
    """Reads the task until it reaches ``state``: for outcomes no process announces."""
    end = time.monotonic() + timeout
    while True:
        task = get_task(channel, queue_name, task_id)
        if task.state == state or time.monotonic() > end:
            assert task.state == state, (
                f"{task_id}: {task_pb2.TaskState.Name(task.state)}, "
                f"wanted {task_pb2.TaskState.Name(state)}"
            )
            return task
        time.sleep(0.05)
