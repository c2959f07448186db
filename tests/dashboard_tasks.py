"""Real tasks for the queue and task screens' tests, made and checked through the gRPC stubs of
a served broker: enqueue, lease, fail, and read states back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import httpx
from dashboard_testing import Served, ServedFactory
from google.protobuf.duration_pb2 import Duration

from leasq.v1 import broker_service_pb2 as broker_pb
from leasq.v1 import inspect_service_pb2 as inspect_pb
from leasq.v1 import task_pb2
from leasq_broker.edge.tokens import hash_token

READER, ADMIN = "reader-secret-token", "admin-secret-token"

STATE_NAMES = {value: name.removeprefix("TASK_STATE_").lower()
               for name, value in task_pb2.TaskState.items()}  # fmt: skip


def enqueue(served: Served, queue: str, count: int, task_type: str = "email:send",
            payload: bytes = b'{"to": "a@example.com"}', **spec: Any) -> list[str]:
    """Enqueue ``count`` tasks (ids ``spec['task_id']`` prefixes get ``-i``); their ids."""
    prefix = spec.pop("task_id", "")
    tasks = [task_pb2.TaskSpec(type=task_type, payload=payload, queue=queue,
                               task_id=f"{prefix}-{i:03d}" if prefix else "", **spec)
             for i in range(count)]  # fmt: skip
    answer = served.stub.EnqueueBatch(broker_pb.EnqueueBatchRequest(tasks=tasks),
                                      metadata=served.metadata)  # fmt: skip
    assert all(not r.HasField("error") for r in answer.results), answer
    return [r.task.id for r in answer.results]


def lease(served: Served, queue: str, count: int) -> list[task_pb2.LeasedTask]:
    """Lease up to ``count`` tasks of ``queue`` for ten minutes (no waiting)."""
    request = broker_pb.LeaseRequest(
        worker_id="dash-worker", queues=[broker_pb.QueueWeight(queue=queue)], max_tasks=count,
        lease_duration=Duration(seconds=600), wait=Duration(seconds=0))
    return list(served.stub.Lease(request, metadata=served.metadata).tasks)


def fail(served: Served, leased: list[task_pb2.LeasedTask], error: str, error_type: str,
         archive: bool = False) -> None:
    """Nack the leased tasks with an error: retry later (in an hour), or archive now."""
    action = broker_pb.NACK_ACTION_ARCHIVE if archive else broker_pb.NACK_ACTION_RETRY
    items = [broker_pb.NackItem(
        lease=broker_pb.LeaseRef(queue=t.queue, task_id=t.id, lease_token=t.lease_token),
        action=action, error=error, error_type=error_type, retry_after=Duration(seconds=3600))
        for t in leased]  # fmt: skip
    served.stub.Nack(broker_pb.NackRequest(worker_id="dash-worker", items=items),
                     metadata=served.metadata)  # fmt: skip


def state_of(served: Served, queue: str, task_id: str) -> str:
    """The task's state name, or ``gone``."""
    try:
        answer = served.inspect.GetTask(inspect_pb.GetTaskRequest(queue=queue, task_id=task_id),
                                        metadata=served.metadata)  # fmt: skip
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.NOT_FOUND:
            return "gone"
        raise
    return STATE_NAMES[answer.task.state]


def stats(served: Served, queue: str) -> inspect_pb.QueueStats:
    return served.inspect.GetQueueStats(inspect_pb.GetQueueStatsRequest(queue=queue),
                                        metadata=served.metadata).stats  # fmt: skip


def guarded_broker(dashboard_factory: ServedFactory, tmp_path: Path) -> Served:
    """A served broker with an admin and a reader token; its stubs use the admin one."""
    path = tmp_path / "tokens.toml"
    path.write_text("".join(
        f'[[token]]\nname = "{role}"\nsha256 = "{hash_token(secret)}"\nrole = "{role}"\n\n'
        for role, secret in (("admin", ADMIN), ("reader", READER))))
    return dashboard_factory(auth_tokens_file=path, token=ADMIN)


@contextmanager
def session(served: Served, token: str) -> Iterator[httpx.Client]:
    """An HTTP client with ``token`` that holds its CSRF cookie (set by the first page)."""
    with httpx.Client(headers={"Authorization": f"Bearer {token}"},
                      follow_redirects=True) as client:
        assert client.get(served.url).status_code == 200
        assert client.cookies.get("leasq_csrf")
        yield client
