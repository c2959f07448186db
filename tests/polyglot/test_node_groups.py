"""The Node.js worker gets a flushed group as one task and processes every member exactly once.

Grouped tasks are enqueued with the Python SDK (and with the Node producer), flushed by
FlushGroup or by the queue's max size, and leased by examples/node/worker.js, whose `digest`
handler returns every member it was given; the test reads the worker's `started` and `acked`
lines.
"""

from __future__ import annotations

import json
import signal
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from polyglot.node_interop_support import (
    JsonLineProcess,
    node_executable,
    node_worker,
    run_node_producer,
)

from leasq_sdk import Client, TaskState

HOUR = 3600.0


@pytest.fixture(scope="module")
def node() -> str:
    return node_executable()


@pytest.fixture
def address(broker: Any) -> str:
    return str(broker.address)


@pytest.fixture
def queue_name() -> str:
    return f"digests-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def client(address: str, queue_name: str) -> Iterator[Client]:
    """A Python producer whose queue flushes groups only when told (or at the max size)."""
    with Client(address) as producer:
        producer.update_queue_settings(queue_name, group_grace=HOUR, group_max_delay=HOUR)
        yield producer


@pytest.fixture
def worker(node: str, address: str, queue_name: str) -> Iterator[JsonLineProcess]:
    proc = node_worker(node, address, queue_name)
    try:
        yield proc
    finally:
        proc.close()


def _acked_digest(worker: JsonLineProcess, task_id: str) -> dict[str, Any]:
    """The result of the digest handler for ``task_id``, read from the worker's `acked` line."""
    acked = worker.wait_event("acked", task_id)
    result: dict[str, Any] = json.loads(acked["result"])
    return result


def _digests_after_exit(worker: JsonLineProcess) -> list[dict[str, Any]]:
    """Every digest result the worker acked in its whole life: stops it and reads all output."""
    worker.send(signal.SIGTERM)
    assert worker.wait_exit() == 0
    worker.close()
    events = [json.loads(line) for line in worker.raw if line.startswith("{")]
    return [json.loads(e["result"]) for e in events
            if e.get("event") == "acked" and e.get("type") == "digest"]


def test_a_flushed_group_reaches_the_node_digest_handler_with_every_member_once_in_order(
    client: Client, worker: JsonLineProcess, queue_name: str
) -> None:
    ids = [
        client.enqueue("digest", {"n": n}, queue=queue_name, group="user:42",
                       headers={"seq": str(n)}).id
        for n in range(5)
    ]  # fmt: skip
    assert client.queue_stats(queue_name).aggregating == 5

    flushed = client.flush_group(queue_name, "digest", "user:42")
    assert flushed.members == 5

    started = worker.wait_event("started", flushed.task.id)
    assert (started["group"], started["member_ids"], started["payload"]) == ("user:42", ids, "")
    result = _acked_digest(worker, flushed.task.id)
    assert (result["group"], result["count"]) == ("user:42", 5)
    assert [m["id"] for m in result["members"]] == ids
    assert [m["payload"] for m in result["members"]] == [{"n": n} for n in range(5)]
    stats = client.queue_stats(queue_name)
    assert (stats.aggregating, stats.pending, stats.active) == (0, 0, 0)
    assert [[m["id"] for m in d["members"]] for d in _digests_after_exit(worker)] == [ids]


def test_groups_flushed_at_their_max_size_are_each_processed_once_by_the_node_worker(
    client: Client, worker: JsonLineProcess, queue_name: str, node: str, address: str
) -> None:
    client.update_queue_settings(queue_name, group_max_size=3)
    enqueued: dict[str, list[str]] = {}
    for group in ("a", "b"):
        for n in range(3):
            info = client.enqueue("digest", {"group": group, "n": n}, queue=queue_name,
                                  group=group)
            enqueued.setdefault(group, []).append(info.id)
    # A member from the Node producer joins group "c" next to two from Python.
    rc, out = run_node_producer(node, address, "--type", "digest", "--queue", queue_name,
                                "--group", "c", "--payload", '{"group": "c", "n": 0}')
    assert rc == 0 and out["state"] == "TASK_STATE_AGGREGATING"
    enqueued["c"] = [out["id"]]
    for n in (1, 2):
        info = client.enqueue("digest", {"group": "c", "n": n}, queue=queue_name, group="c")
        enqueued["c"].append(info.id)

    seen: dict[str, list[str]] = {}
    for _ in range(3):
        acked = worker.wait_for(lambda e: e.get("event") == "acked" and e.get("type") == "digest")
        result = json.loads(acked["result"])
        assert result["group"] not in seen, f"group {result['group']} processed twice"
        seen[result["group"]] = [m["id"] for m in result["members"]]
        assert [m["payload"]["n"] for m in result["members"]] == [0, 1, 2]
    assert seen == enqueued
    assert client.queue_stats(queue_name).aggregating == 0
    every = sorted(m["id"] for d in _digests_after_exit(worker) for m in d["members"])
    assert every == sorted(i for ids in enqueued.values() for i in ids)


def test_a_digest_task_without_a_group_is_a_batch_of_one_for_the_node_handler(
    client: Client, worker: JsonLineProcess, queue_name: str
) -> None:
    info = client.enqueue("digest", {"n": 7}, queue=queue_name)
    assert info.state is TaskState.PENDING
    result = _acked_digest(worker, info.id)
    assert (result["group"], result["members"]) == ("", [{"id": info.id, "payload": {"n": 7}}])
