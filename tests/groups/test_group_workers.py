"""A Python worker process gets a flushed group as one task: ``task.group`` and ``task.members``.

Grouped tasks are enqueued with the SDK and flushed with FlushGroup; a real
``python -m leasq_worker`` process runs the handlers of ``group_handlers.py``, which print what
they saw as JSON lines. Exactly once is judged on the worker's whole output after it stopped.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from groups.group_handlers import DIGEST, Line
from polyglot.node_interop_support import JsonLineProcess

from leasq_sdk import Client, TaskState

HERE = Path(__file__).resolve().parent  # on the workers' PYTHONPATH: group_handlers
HOUR = 3600.0

StartWorker = Callable[..., JsonLineProcess]


@pytest.fixture
def address(broker: Any) -> str:
    return str(broker.address)


@pytest.fixture
def queue_name() -> str:
    return f"gw-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def client(address: str, queue_name: str) -> Iterator[Client]:
    """A producer whose queue flushes groups only when told."""
    with Client(address) as producer:
        producer.update_queue_settings(queue_name, group_grace=HOUR, group_max_delay=HOUR)
        yield producer


@pytest.fixture
def start_worker(address: str, queue_name: str) -> Iterator[StartWorker]:
    """``start_worker(registry="registry")``: a worker process on the test's queue, ready."""
    started: list[JsonLineProcess] = []

    def start(registry: str = "registry") -> JsonLineProcess:
        env = {"PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
               "PYTHONUNBUFFERED": "1"}
        proc = JsonLineProcess(
            [sys.executable, "-m", "leasq_worker", f"group_handlers:{registry}",
             "--queue", queue_name, "--broker", address, "--log-format", "json"],
            env=env,
        )  # fmt: skip
        started.append(proc)
        proc.wait_event("worker started", timeout=30)
        return proc

    yield start
    for proc in started:
        proc.close()


def _batches_after_exit(worker: JsonLineProcess) -> list[dict[str, Any]]:
    """Every batch a handler reported in the worker's whole life: stops it, reads all output."""
    worker.send(signal.SIGTERM)
    assert worker.wait_exit() == 0
    worker.close()
    events = [json.loads(line) for line in worker.raw if line.startswith("{")]
    return [e for e in events if e.get("event") == "batch"]


def _enqueue_lines(client: Client, queue: str, group: str, count: int,
                   task_type: str = "digest") -> list[str]:
    return [
        client.enqueue(task_type, Line(n, f"line {n}"), queue=queue, group=group,
                       headers={"seq": str(n)}).id
        for n in range(count)
    ]  # fmt: skip


def test_a_handler_gets_the_flushed_batch_with_every_member_decoded_in_joining_order(
    client: Client, queue_name: str, start_worker: StartWorker
) -> None:
    ids = [
        DIGEST.enqueue(client, Line(n, f"line {n}"), queue=queue_name, group="user:42",
                       headers={"seq": str(n)}).id
        for n in range(4)
    ]  # fmt: skip
    flushed = client.flush_group(queue_name, "digest", "user:42")
    worker = start_worker()

    batch = worker.wait_for(lambda e: e.get("event") == "batch")
    assert (batch["task_id"], batch["group"], batch["type"]) == (flushed.task.id, "user:42",
                                                                 "digest")
    members = batch["members"]
    assert [m["id"] for m in members] == ids
    assert [(m["n"], m["text"]) for m in members] == [(n, f"line {n}") for n in range(4)]
    assert [m["json"] for m in members] == [{"n": n, "text": f"line {n}"} for n in range(4)]
    assert [m["headers"]["seq"] for m in members] == ["0", "1", "2", "3"]
    stamps = [m["enqueued_at"] for m in members]
    assert all(stamps) and stamps == sorted(stamps)
    assert [[m["id"] for m in b["members"]] for b in _batches_after_exit(worker)] == [ids]
    assert client.queue_stats(queue_name).aggregating == 0


def test_an_ordinary_task_has_no_group_and_no_members(
    client: Client, queue_name: str, start_worker: StartWorker
) -> None:
    info = DIGEST.enqueue(client, Line(1, "alone"), queue=queue_name)
    assert info.state is TaskState.PENDING
    worker = start_worker()
    batch = worker.wait_for(lambda e: e.get("event") == "batch")
    assert (batch["task_id"], batch["group"], batch["members"]) == (info.id, "", [])


def test_a_failed_batch_is_retried_with_the_same_members_and_succeeds_once(
    client: Client, queue_name: str, start_worker: StartWorker
) -> None:
    ids = _enqueue_lines(client, queue_name, "g", 3, task_type="digest:flaky")
    flushed = client.flush_group(queue_name, "digest:flaky", "g")
    worker = start_worker()
    worker.wait_for(lambda e: e.get("event") == "failing" and e["task_id"] == flushed.task.id)
    batch = worker.wait_for(lambda e: e.get("event") == "batch")
    assert (batch["task_id"], batch["attempt"]) == (flushed.task.id, 2)
    assert [m["id"] for m in batch["members"]] == ids
    assert [[m["id"] for m in b["members"]] for b in _batches_after_exit(worker)] == [ids]


def test_members_reach_a_process_pool_handler(
    client: Client, queue_name: str, start_worker: StartWorker
) -> None:
    ids = _enqueue_lines(client, queue_name, "cpu", 3)
    flushed = client.flush_group(queue_name, "digest", "cpu")
    worker = start_worker("process_registry")
    batch = worker.wait_for(lambda e: e.get("event") == "batch")
    assert (batch["task_id"], batch["group"]) == (flushed.task.id, "cpu")
    assert [(m["id"], m["n"]) for m in batch["members"]] == list(zip(ids, range(3), strict=True))


def test_two_groups_of_one_type_become_two_batches_each_processed_once(
    client: Client, queue_name: str, start_worker: StartWorker
) -> None:
    worker = start_worker()
    first = _enqueue_lines(client, queue_name, "first", 3)
    second = _enqueue_lines(client, queue_name, "second", 2)
    flushed = {client.flush_group(queue_name, "digest", g).task.id: g for g in ("first", "second")}
    got: dict[str, list[str]] = {}
    for _ in range(2):
        batch = worker.wait_for(lambda e: e.get("event") == "batch")
        got[flushed[batch["task_id"]]] = [m["id"] for m in batch["members"]]
    assert got == {"first": first, "second": second}
    assert sorted(m["id"] for b in _batches_after_exit(worker) for m in b["members"]) == sorted(
        first + second
    )
