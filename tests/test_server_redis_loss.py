"""A Redis that loses its data under a running broker: background work picks the queues up again.

FLUSHALL stands for any loss of data while the broker keeps running (a Redis restart without
persistence, a failover to an empty replica): nothing the broker remembers in memory may make
it skip writing what Redis needs to serve the queues afterwards.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis.asyncio
from google.protobuf.duration_pb2 import Duration
from rpc_testing import lease_request, spec

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import inspect_service_pb2 as ipb
from leasq.v1 import task_pb2

QUEUE = "after-flush"


async def _state_within(inspect: Any, task_id: str, state: int, seconds: float) -> float:
    """Poll GetTask until the task is in ``state`` (no event exists for it); the time taken."""
    started = time.monotonic()
    request = ipb.GetTaskRequest(queue=QUEUE, task_id=task_id)
    while True:
        task = (await inspect.GetTask(request, timeout=5)).task
        if task.state == state:
            return time.monotonic() - started
        elapsed = time.monotonic() - started
        assert elapsed < seconds, f"task {task_id} still {task_pb2.TaskState.Name(task.state)}"
        await asyncio.sleep(0.05)


async def test_after_flushall_a_due_task_is_forwarded_and_an_expired_lease_reclaimed(
    broker_stub: Any, inspect_stub: Any, redis_client: redis.asyncio.Redis
) -> None:
    # The broker has served this queue before the loss.
    await broker_stub.Enqueue(pb.EnqueueRequest(task=spec(queue=QUEUE)), timeout=5)
    await redis_client.flushall()

    scheduled = await broker_stub.Enqueue(
        pb.EnqueueRequest(task=spec(queue=QUEUE, process_in=Duration(nanos=300_000_000))),
        timeout=5,
    )
    assert scheduled.task.state == task_pb2.TASK_STATE_SCHEDULED
    leased_id = (await broker_stub.Enqueue(pb.EnqueueRequest(task=spec(queue=QUEUE)),
                                           timeout=5)).task.id  # fmt: skip
    # Leasing from the queue would forward the scheduled task itself: lease this one only
    # after the forwarder (not a Lease) has made the scheduled task pending.
    await _state_within(inspect_stub, scheduled.task.id, task_pb2.TASK_STATE_PENDING, 5)

    got = await broker_stub.Lease(
        lease_request(QUEUE, max_tasks=2, lease_duration=Duration(seconds=1)), timeout=5
    )
    assert {t.id for t in got.tasks} == {leased_id, scheduled.task.id}
    # Reclaimed by the background loop: back to pending about a second after the lease.
    waited = await _state_within(inspect_stub, leased_id, task_pb2.TASK_STATE_PENDING, 5)
    assert waited < 3
    queues = await inspect_stub.ListQueues(ipb.ListQueuesRequest(), timeout=5)
    assert [q.queue for q in queues.queues] == [QUEUE]
