"""Helpers for pattern tests: Lease requests mixing queue names and patterns."""

from __future__ import annotations

from typing import Any

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import task_pb2


def entry(name: str, weight: int = 0) -> pb.QueueWeight:
    """A Lease entry: a pattern when ``name`` holds ``*`` or ``?``, else a queue."""
    if "*" in name or "?" in name:
        return pb.QueueWeight(pattern=name, weight=weight)
    return pb.QueueWeight(queue=name, weight=weight)


def lease_of(*entries: str | pb.QueueWeight, **fields: Any) -> pb.LeaseRequest:
    fields.setdefault("worker_id", "w-patterns")
    items = [e if isinstance(e, pb.QueueWeight) else entry(e) for e in entries]
    return pb.LeaseRequest(queues=items, **fields)


async def fill(stub: Any, counts: dict[str, int], **call: Any) -> None:
    """Enqueue ``counts[queue]`` no-op tasks into each queue, in batches (``call``: options of
    the gRPC call, e.g. metadata)."""
    specs = [task_pb2.TaskSpec(type="noop", queue=q) for q, n in counts.items() for _ in range(n)]
    for start in range(0, len(specs), 1000):
        await stub.EnqueueBatch(pb.EnqueueBatchRequest(tasks=specs[start : start + 1000]), **call)


async def leased_queues(stub: Any, request: pb.LeaseRequest) -> list[str]:
    """The queues of the tasks one Lease returned (they stay ACTIVE)."""
    response = await stub.Lease(request)
    return [task.queue for task in response.tasks]
