"""Helpers of the operator-call tests (tests/operations): put tasks into given states through
the broker's own calls (enqueue, lease, ack, nack)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from google.protobuf.duration_pb2 import Duration

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import broker_service_pb2_grpc as pb_grpc
from leasq.v1 import task_pb2
from leasq_sdk import AsyncClient, TaskRequest


async def enqueue(aclient: AsyncClient, queue: str, count: int, task_type: str = "t:x",
                  payload: bytes = b"p", prefix: str = "", **options: object) -> list[str]:
    """Enqueue ``count`` tasks (ids ``prefix + n`` when a prefix is given); their ids."""
    requests = [TaskRequest(task_type, payload, queue=queue,
                            task_id=f"{prefix}{n}" if prefix else None, **options)  # type: ignore[arg-type]
                for n in range(count)]
    results = await aclient.enqueue_many(requests)
    ids = []
    for result in results:
        assert not isinstance(result, Exception), result
        ids.append(result.id)
    return ids


async def lease(stub: pb_grpc.BrokerServiceStub, queue: str, count: int,
                lease_s: float = 60, worker: str = "w1") -> list[task_pb2.LeasedTask]:
    """Lease up to ``count`` tasks of ``queue`` (no waiting)."""
    tasks: list[task_pb2.LeasedTask] = []
    while len(tasks) < count:
        response = await stub.Lease(pb.LeaseRequest(
            worker_id=worker, queues=[pb.QueueWeight(queue=queue)],
            max_tasks=min(100, count - len(tasks)),
            lease_duration=Duration(seconds=int(lease_s), nanos=int(lease_s % 1 * 1e9))))
        if not response.tasks:
            break
        tasks += response.tasks
    return tasks


async def nack(stub: pb_grpc.BrokerServiceStub, tasks: Sequence[task_pb2.LeasedTask],
               action: pb.NackAction.ValueType, error_type: str,
               retry_after: timedelta | None = None) -> None:
    """Nack leased tasks with ``action`` and ``error_type``."""
    items = []
    for task in tasks:
        item = pb.NackItem(lease=pb.LeaseRef(queue=task.queue, task_id=task.id,
                                             lease_token=task.lease_token),
                           action=action, error="boom", error_type=error_type)
        if retry_after is not None:
            item.retry_after.FromTimedelta(retry_after)
        items.append(item)
    for start in range(0, len(items), 1000):
        response = await stub.Nack(pb.NackRequest(worker_id="w1", items=items[start:start + 1000]))
        assert not any(r.HasField("error") for r in response.results), response


async def ack(stub: pb_grpc.BrokerServiceStub, tasks: Sequence[task_pb2.LeasedTask]) -> None:
    items = [pb.AckItem(lease=pb.LeaseRef(queue=t.queue, task_id=t.id,
                                          lease_token=t.lease_token)) for t in tasks]
    response = await stub.Ack(pb.AckRequest(worker_id="w1", items=items))
    assert not any(r.HasField("error") for r in response.results), response


async def archived(aclient: AsyncClient, stub: pb_grpc.BrokerServiceStub, queue: str,
                   count: int, error_type: str, task_type: str = "t:x",
                   prefix: str = "") -> list[str]:
    """``count`` tasks of ``queue`` dead-lettered by a worker with ``error_type``."""
    ids = await enqueue(aclient, queue, count, task_type, prefix=prefix)
    leased = await lease(stub, queue, count)
    assert len(leased) == count
    await nack(stub, leased, pb.NACK_ACTION_ARCHIVE, error_type)
    return ids
