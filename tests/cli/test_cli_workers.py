"""``leasq worker ls | quiet | stop``, with a worker that leased a task through the real
BrokerService (a Lease call carrying its WorkerMeta)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import grpc
import pytest
from broker_process import BrokerHandle
from cli_testing import Leasq, one_error_line
from google.protobuf.duration_pb2 import Duration

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import broker_service_pb2_grpc as pb_grpc
from leasq_sdk import Client


@pytest.fixture
def broker_stub_sync(broker: BrokerHandle) -> Iterator[pb_grpc.BrokerServiceStub]:
    with grpc.insecure_channel(broker.address) as channel:
        yield pb_grpc.BrokerServiceStub(channel)


def lease_one(stub: pb_grpc.BrokerServiceStub, worker_id: str, queue: str) -> pb.LeaseResponse:
    """A Lease call as a worker makes it: its id, queues and metadata; one task."""
    request = pb.LeaseRequest(
        worker_id=worker_id, queues=[pb.QueueWeight(queue=queue, weight=2)], max_tasks=1,
        lease_duration=Duration(seconds=60), wait=Duration(seconds=0),
        worker=pb.WorkerMeta(host="box-1", pid=os.getpid(), concurrency=4, sdk="test/1.0"),
    )  # fmt: skip
    response: pb.LeaseResponse = stub.Lease(request, timeout=10)
    return response


def test_ls_shows_each_live_worker_and_the_tasks_it_holds(
    leasq: Leasq, client: Client, broker_stub_sync: pb_grpc.BrokerServiceStub
) -> None:
    task_id = client.enqueue("email:send", b"", queue="email").id
    assert len(lease_one(broker_stub_sync, "worker-a", "email").tasks) == 1
    text = leasq("worker", "ls").ok().stdout
    row = next(line.split() for line in text.splitlines() if line.startswith("worker-a"))
    assert row[:5] == ["worker-a", "box-1", str(os.getpid()), "test/1.0", "email:2"]
    assert "1/4" in row
    assert task_id in text
    workers = leasq("--json", "worker", "ls").json()
    assert [w["worker_id"] for w in workers] == ["worker-a"]
    assert workers[0]["tasks"][0]["task_id"] == task_id
    assert workers[0]["command"] == "none"


def test_quiet_and_stop_record_the_command_the_worker_is_given(
    leasq: Leasq, client: Client, broker_stub_sync: pb_grpc.BrokerServiceStub
) -> None:
    client.enqueue("t", b"", queue="q")
    lease_one(broker_stub_sync, "worker-b", "q")
    assert "worker worker-b told to quiet" in leasq("worker", "quiet", "worker-b").ok().stdout
    assert leasq("--json", "worker", "ls").json()[0]["command"] == "quiet"
    stopped = leasq("--json", "worker", "stop", "worker-b").json()
    assert stopped["command"] == "stop"
    assert lease_one(broker_stub_sync, "worker-b", "q").command == pb.WORKER_COMMAND_STOP


def test_an_unknown_worker_is_not_found(leasq: Leasq) -> None:
    run = leasq("worker", "stop", "nobody")
    assert run.code == 3
    assert "nobody" in one_error_line(run) or "WORKER_NOT_FOUND" in run.stderr


def test_no_workers_says_so(leasq: Leasq) -> None:
    assert "no live workers" in leasq("worker", "ls").ok().stdout
