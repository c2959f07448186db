"""Helpers for worker tests: enqueue and inspect through the raw generated stubs."""

from __future__ import annotations

from typing import Any

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import inspect_service_pb2 as ipb
from leasq.v1 import task_pb2
from leasq_worker import Worker


async def stop(worker: Worker) -> None:
    """Stop ``worker`` and wait until it has reported every outcome."""
    worker.stop()
    await worker.stopped()


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
    response = await stub.GetTask(ipb.GetTaskRequest(queue=queue, task_id=task_id))
    return response.task


async def stats(stub: Any, queue: str) -> ipb.QueueStats:
    """Counts per state of ``queue``."""
    response = await stub.GetQueueStats(ipb.GetQueueStatsRequest(queue=queue))
    return response.stats
