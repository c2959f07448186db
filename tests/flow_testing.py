"""Helpers of the flow-control tests: settings requests and lease bookkeeping over gRPC."""

from __future__ import annotations

from typing import Any

from google.protobuf.field_mask_pb2 import FieldMask

from leasq.v1 import broker_service_pb2 as bpb
from leasq.v1 import inspect_service_pb2 as ipb
from leasq.v1 import task_pb2
from leasq.v1.broker_service_pb2_grpc import BrokerServiceStub
from leasq.v1.inspect_service_pb2_grpc import InspectServiceStub


async def configure(inspect: InspectServiceStub, queue: str, *paths: str, **fields: Any
                    ) -> ipb.QueueSettings:
    """UpdateQueueSettings with these QueueSettings fields (and mask paths, if any)."""
    request = ipb.UpdateQueueSettingsRequest(queue=queue, settings=ipb.QueueSettings(**fields))
    if paths:
        request.update_mask.CopyFrom(FieldMask(paths=list(paths)))
    return (await inspect.UpdateQueueSettings(request)).settings


async def enqueue(stub: BrokerServiceStub, queue: str, n: int, *, key: str = "",
                  prefix: str = "t") -> list[str]:
    """Enqueue n tasks (ids prefix0..), in batches; their ids in enqueue order."""
    ids = [f"{prefix}{i}" for i in range(n)]
    for start in range(0, n, 1000):
        specs = [task_pb2.TaskSpec(type="t:x", queue=queue, task_id=task_id,
                                   concurrency_key=key)
                 for task_id in ids[start:start + 1000]]
        reply = await stub.EnqueueBatch(bpb.EnqueueBatchRequest(tasks=specs))
        assert reply.enqueued_count == len(specs), reply
    return ids


async def lease(stub: BrokerServiceStub, queue: str, n: int = 1, *, wait_ms: int = 0,
                worker: str = "w1") -> list[task_pb2.LeasedTask]:
    reply = await stub.Lease(bpb.LeaseRequest(
        worker_id=worker, queues=[bpb.QueueWeight(queue=queue)], max_tasks=n,
        wait=({"seconds": wait_ms // 1000, "nanos": wait_ms % 1000 * 1_000_000}
              if wait_ms else None)))
    return list(reply.tasks)


async def ack(stub: BrokerServiceStub, task: task_pb2.LeasedTask, worker: str = "w1") -> None:
    ref = bpb.LeaseRef(queue=task.queue, task_id=task.id, lease_token=task.lease_token)
    reply = await stub.Ack(bpb.AckRequest(worker_id=worker, items=[bpb.AckItem(lease=ref)]))
    assert not reply.results[0].HasField("error"), reply
