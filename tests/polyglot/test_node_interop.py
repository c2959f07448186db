"""A Node.js producer and worker, written from the .proto alone, interoperate with Python.

examples/node loads proto/ at run time with @grpc/proto-loader; these tests run it against a
real broker next to the Python worker runtime and a Python producer, and judge the outcome by
the task's final state as InspectService reports it and by what each handler saw.
"""

from __future__ import annotations

import json
import signal
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from polyglot.node_interop_support import (
    get_task,
    node_executable,
    node_worker,
    python_worker,
    run_node_producer,
    wait_for_state,
)

from leasq.v1 import task_pb2
from leasq_sdk import Client

HOUR = 3600.0


@pytest.fixture(scope="module")
def node() -> str:
    return node_executable()


@pytest.fixture
def address(broker: Any) -> str:
    return str(broker.address)


@pytest.fixture
def channel(address: str) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(address) as ch:
        yield ch


@pytest.fixture
def queue_name() -> str:
    return f"interop-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def producer(address: str) -> Iterator[Client]:
    """A Python producer: the SDK's client."""
    with Client(address) as client:
        yield client


def test_the_node_producer_enqueues_with_options_and_prints_the_reason_of_each_refusal(
    node: str, address: str, channel: grpc.Channel, queue_name: str
) -> None:
    rc, out = run_node_producer(
        node,
        address,
        "--type",
        "email:welcome",
        "--payload",
        '{"to": "ada@example.com"}',
        "--queue",
        queue_name,
        "--task-id",
        "later",
        "--process-in",
        "1h",
        "--max-retry",
        "2",
        "--unique-ttl",
        "1h",
        "--header",
        "tenant=acme",
    )
    assert rc == 0 and out["id"] == "later" and out["state"] == "TASK_STATE_SCHEDULED"
    stored = get_task(channel, queue_name, "later")
    assert (stored.state, stored.max_retry, stored.unique_ttl.seconds) == (
        task_pb2.TASK_STATE_SCHEDULED,
        2,
        3600,
    )
    assert stored.headers["tenant"] == "acme"

    rc, out = run_node_producer(
        node, address, "--type", "x:y", "--queue", queue_name, "--task-id", "later"
    )
    assert rc == 2
    assert (out["error"]["code"], out["error"]["reason"]) == ("ALREADY_EXISTS", "TASK_ID_CONFLICT")
    assert out["error"]["domain"] == "leasq.v1"

    rc, out = run_node_producer(
        node,
        address,
        "--type",
        "email:welcome",
        "--payload",
        '{"to": "ada@example.com"}',
        "--queue",
        queue_name,
        "--unique-ttl",
        "1h",
    )
    assert (rc, out["error"]["reason"]) == (2, "DUPLICATE_TASK")

    rc, out = run_node_producer(node, address, "--type", "x:y", "--queue", "no{braces}")
    assert (rc, out["error"]["code"], out["error"]["reason"]) == (
        2,
        "INVALID_ARGUMENT",
        "INVALID_FIELD",
    )
    assert [v["field"] for v in out["error"]["field_violations"]] == ["task.queue"]


def test_a_task_from_the_node_producer_is_run_by_the_python_worker_as_it_was_sent(
    node: str, address: str, channel: grpc.Channel, queue_name: str
) -> None:
    rc, out = run_node_producer(
        node,
        address,
        "--type",
        "email:welcome",
        "--payload",
        '{"to": "ada@example.com"}',
        "--queue",
        queue_name,
        "--task-id",
        "welcome-ada",
        "--max-retry",
        "3",
        "--retention",
        "1h",
        "--header",
        "tenant=acme",
        "--header",
        "trace=abc-123",
    )
    assert (rc, out["state"]) == (0, "TASK_STATE_PENDING")
    worker = python_worker(address, queue_name)
    try:
        seen = worker.wait_event("py_handled", "welcome-ada")
        done = wait_for_state(channel, queue_name, "welcome-ada", task_pb2.TASK_STATE_COMPLETED)
    finally:
        worker.send(signal.SIGTERM)
        worker.wait_exit()
        worker.close()
    assert seen["payload"] == '{"to": "ada@example.com"}'
    assert seen["headers"] == {
        "tenant": "acme",
        "trace": "abc-123",
        "content-type": "application/json",
    }
    assert (seen["retry_count"], seen["max_retry"]) == (0, 3)
    assert json.loads(done.result) == {"sent_to": "ada@example.com", "by": "python"}


def test_python_tasks_are_acked_retried_and_archived_by_the_node_worker(
    node: str, address: str, channel: grpc.Channel, producer: Client, queue_name: str
) -> None:
    critical = f"{queue_name}-critical"
    producer.enqueue(
        "email:welcome",
        {"to": "bo@example.com"},
        queue=critical,
        task_id="w",
        headers={"tenant": "acme"},
        retention=HOUR,
    )
    producer.enqueue("flaky:fetch", {}, queue=queue_name, task_id="f", max_retry=3)
    producer.enqueue("image:resize", {}, queue=queue_name, task_id="i")
    worker = node_worker(node, address, f"{critical}=6,{queue_name}=3", "--concurrency", "2")
    try:
        started = worker.wait_event("started", "w")
        worker.wait_event("acked", "w")
        retried = worker.wait_event("nacked", "f")
        archived = worker.wait_event("nacked", "i")
    finally:
        worker.close()
    assert json.loads(started["payload"]) == {"to": "bo@example.com"}
    assert started["headers"] == {"tenant": "acme", "content-type": "application/json"}
    assert (retried["action"], archived["action"]) == ("NACK_ACTION_RETRY", "NACK_ACTION_ARCHIVE")

    done = get_task(channel, critical, "w")
    assert done.state == task_pb2.TASK_STATE_COMPLETED
    assert json.loads(done.result) == {"sent_to": "bo@example.com", "by": "node", "attempt": 1}
    flaky = get_task(channel, queue_name, "f")
    assert (flaky.state, flaky.retried, flaky.last_error) == (
        task_pb2.TASK_STATE_RETRY,
        1,
        "upstream answered 503",
    )
    dead = get_task(channel, queue_name, "i")
    assert (dead.state, dead.retried, dead.last_error_type) == (
        task_pb2.TASK_STATE_ARCHIVED,
        0,
        "SkipRetry",
    )


def test_the_node_worker_gives_its_running_task_back_on_sigterm(
    node: str, address: str, channel: grpc.Channel, producer: Client, queue_name: str
) -> None:
    producer.enqueue("report:generate", {"ms": 600_000}, queue=queue_name, task_id="long")
    worker = node_worker(node, address, queue_name, "--concurrency", "1")
    try:
        worker.wait_event("started", "long")
        worker.send(signal.SIGTERM)
        nacked = worker.wait_event("nacked", "long")
        worker.wait_event("stopped")
        assert worker.wait_exit() == 0
    finally:
        worker.close()
    assert nacked["action"] == "NACK_ACTION_REQUEUE"
    back = get_task(channel, queue_name, "long")
    assert (back.state, back.retried, back.lease_lost_count) == (task_pb2.TASK_STATE_PENDING, 0, 0)


def test_the_task_of_a_node_worker_killed_mid_task_is_finished_by_a_python_worker(
    node: str, address: str, channel: grpc.Channel, producer: Client, queue_name: str
) -> None:
    producer.enqueue(
        "report:generate", {"ms": 600_000}, queue=queue_name, task_id="orphan", retention=HOUR
    )
    node_proc = node_worker(node, address, queue_name, "--lease-duration", "2s")
    try:
        node_proc.wait_event("started", "orphan")
        node_proc.send(signal.SIGKILL)
        node_proc.wait_exit()
    finally:
        node_proc.close()
    py_proc = python_worker(address, queue_name)
    try:
        seen = py_proc.wait_event("py_handled", "orphan")
        done = wait_for_state(channel, queue_name, "orphan", task_pb2.TASK_STATE_COMPLETED)
    finally:
        py_proc.send(signal.SIGTERM)
        py_proc.wait_exit()
        py_proc.close()
    assert seen["retry_count"] == 0  # a crashed lease costs no retry
    assert (done.retried, done.lease_lost_count) == (0, 1)
    assert json.loads(done.result) == {"pages": 1, "by": "python"}


def test_a_node_worker_whose_lease_was_taken_over_reports_nothing_for_the_task(
    node: str, address: str, channel: grpc.Channel, producer: Client, queue_name: str
) -> None:
    producer.enqueue(
        "report:generate", {"ms": 600_000}, queue=queue_name, task_id="fenced", retention=HOUR
    )
    node_proc = node_worker(node, address, queue_name, "--lease-duration", "2s")
    py_proc = None
    try:
        first = node_proc.wait_event("leased", "fenced")
        node_proc.send(signal.SIGSTOP)  # frozen: no heartbeats, so the lease expires
        py_proc = python_worker(address, queue_name)
        py_proc.wait_event("py_handled", "fenced")
        wait_for_state(channel, queue_name, "fenced", task_pb2.TASK_STATE_COMPLETED)
        node_proc.send(signal.SIGCONT)
        lost = node_proc.wait_event("lost", "fenced")
        node_proc.wait_event("dropped", "fenced")
        node_proc.send(signal.SIGTERM)
        node_proc.wait_event("stopped")
        assert not node_proc.seen("acked", "fenced") and not node_proc.seen("nacked", "fenced")
    finally:
        node_proc.close()
        if py_proc is not None:
            py_proc.send(signal.SIGTERM)
            py_proc.wait_exit()
            py_proc.close()
    assert lost["during"] == "Heartbeat" and first["lease_lost_count"] == 0
    done = get_task(channel, queue_name, "fenced")
    assert json.loads(done.result) == {"pages": 1, "by": "python"}
