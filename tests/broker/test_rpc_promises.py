"""Smaller promises of the .proto comments, each through a real broker.

The module shares one broker (``shared_broker``); every test works on queues of its own.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import grpc
import grpc.aio
from google.protobuf.duration_pb2 import Duration
from rpc_testing import lease_request, ref, refusal, spec

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import broker_service_pb2_grpc as pb_grpc
from leasq.v1 import inspect_service_pb2 as ipb
from leasq.v1 import inspect_service_pb2_grpc as ipb_grpc


def _queue() -> str:
    return f"p-{uuid.uuid4().hex[:10]}"


def _ms(stamp: Any) -> int:
    return int(stamp.seconds * 1000 + stamp.nanos // 1_000_000)


async def test_a_unique_lock_ends_with_its_ttl_or_when_its_task_succeeds_is_deleted_or_archived(
    shared_channel: grpc.aio.Channel,
) -> None:
    broker = pb_grpc.BrokerServiceStub(shared_channel)
    inspect = ipb_grpc.InspectServiceStub(shared_channel)
    queue = _queue()

    def unique(key: str, ttl: Duration) -> pb.EnqueueRequest:
        return pb.EnqueueRequest(task=spec(queue=queue, unique_ttl=ttl, unique_key=key))

    async def refused(key: str) -> None:
        got = await refusal(broker.Enqueue(unique(key, Duration(seconds=60)), timeout=5))
        assert (got.code, got.reason) == (grpc.StatusCode.ALREADY_EXISTS, "DUPLICATE_TASK")

    # The TTL: refused until it ends, accepted once it has (a second after the first enqueue).
    first = (await broker.Enqueue(unique("ttl", Duration(seconds=1)), timeout=5)).task
    await refused("ttl")
    give_up = time.monotonic() + 3
    while True:
        try:
            second = (await broker.Enqueue(unique("ttl", Duration(seconds=60)), timeout=5)).task
            break
        except grpc.aio.AioRpcError as error:
            assert error.code() == grpc.StatusCode.ALREADY_EXISTS, error
            assert time.monotonic() < give_up, "the lock outlived its 1 s TTL by 2 s"
            await asyncio.sleep(0.05)
    assert _ms(second.next_process_at) - _ms(first.next_process_at) >= 1000 - 5

    # Success (Ack) releases the lock.
    acked = (await broker.Enqueue(unique("ack", Duration(seconds=60)), timeout=5)).task
    leased = (await broker.Lease(lease_request(queue, max_tasks=10), timeout=5)).tasks
    assert {task.id for task in leased} == {first.id, second.id, acked.id}
    await refused("ack")
    item = pb.AckItem(lease=ref(next(task for task in leased if task.id == acked.id)))
    await broker.Ack(pb.AckRequest(worker_id="w1", items=[item]), timeout=5)
    await broker.Enqueue(unique("ack", Duration(seconds=60)), timeout=5)

    # Deleting or archiving a waiting task releases its lock.
    for key, move in (("delete", inspect.DeleteTask), ("archive", inspect.ArchiveTask)):
        task = (await broker.Enqueue(unique(key, Duration(seconds=60)), timeout=5)).task
        await refused(key)
        request_type = ipb.DeleteTaskRequest if key == "delete" else ipb.ArchiveTaskRequest
        await move(request_type(queue=queue, task_id=task.id), timeout=5)
        await broker.Enqueue(unique(key, Duration(seconds=60)), timeout=5)


async def test_the_lease_token_is_the_fence_whatever_worker_id_presents_it(
    shared_channel: grpc.aio.Channel,
) -> None:
    broker = pb_grpc.BrokerServiceStub(shared_channel)
    queue = _queue()
    await broker.Enqueue(pb.EnqueueRequest(task=spec(queue=queue)), timeout=5)
    held = (await broker.Lease(lease_request(queue, worker_id="granted-to"), timeout=5)).tasks[0]
    beat = await broker.Heartbeat(pb.HeartbeatRequest(worker_id="someone-else",
                                                      leases=[ref(held)]), timeout=5)  # fmt: skip
    assert beat.leases[0].status == pb.LEASE_STATUS_EXTENDED
    answer = await broker.Ack(pb.AckRequest(worker_id="someone-else",
                                            items=[pb.AckItem(lease=ref(held))]), timeout=5)
    assert not answer.results[0].HasField("error")
    # Now the lease is gone: a heartbeat says LOST (it does not fail) and gives no expiry.
    beat = await broker.Heartbeat(pb.HeartbeatRequest(worker_id="granted-to",
                                                      leases=[ref(held)]), timeout=5)  # fmt: skip
    assert beat.leases[0].status == pb.LEASE_STATUS_LOST
    assert not beat.leases[0].HasField("lease_expires_at")


async def test_max_tasks_zero_means_one(shared_channel: grpc.aio.Channel) -> None:
    broker = pb_grpc.BrokerServiceStub(shared_channel)
    queue = _queue()
    for _ in range(3):
        await broker.Enqueue(pb.EnqueueRequest(task=spec(queue=queue)), timeout=5)
    got = await broker.Lease(lease_request(queue, max_tasks=0), timeout=5)
    assert len(got.tasks) == 1


async def test_queue_stats_count_states_and_finished_and_failed_attempts(
    shared_channel: grpc.aio.Channel,
) -> None:
    broker = pb_grpc.BrokerServiceStub(shared_channel)
    inspect = ipb_grpc.InspectServiceStub(shared_channel)
    queue = _queue()

    async def stats() -> Any:
        answer = await inspect.GetQueueStats(ipb.GetQueueStatsRequest(queue=queue), timeout=5)
        return answer.stats

    assert await stats() == ipb.QueueStats(queue=queue)  # never used: all zeros
    for _ in range(3):
        await broker.Enqueue(pb.EnqueueRequest(task=spec(queue=queue)), timeout=5)
    done, failed, _ = (await broker.Lease(lease_request(queue, max_tasks=3), timeout=5)).tasks
    await broker.Ack(pb.AckRequest(worker_id="w1", items=[pb.AckItem(lease=ref(done))]),
                     timeout=5)  # fmt: skip
    await broker.Nack(pb.NackRequest(worker_id="w1", items=[pb.NackItem(
        lease=ref(failed), retry_after=Duration(seconds=600))]), timeout=5)  # fmt: skip
    counts = await stats()
    assert (counts.pending, counts.active, counts.retry) == (0, 1, 1)
    assert (counts.processed_today, counts.failed_today) == (2, 1)
    assert (counts.processed_total, counts.failed_total) == (2, 1)


async def test_a_nack_error_over_16_kib_and_a_type_over_256_characters_are_cut_not_refused(
    shared_channel: grpc.aio.Channel,
) -> None:
    broker = pb_grpc.BrokerServiceStub(shared_channel)
    inspect = ipb_grpc.InspectServiceStub(shared_channel)
    queue = _queue()
    await broker.Enqueue(pb.EnqueueRequest(task=spec(queue=queue)), timeout=5)
    held = (await broker.Lease(lease_request(queue), timeout=5)).tasks[0]
    error, error_type = "e" * 20_000 + "!", "T" * 300
    await broker.Nack(pb.NackRequest(worker_id="w1", items=[pb.NackItem(
        lease=ref(held), error=error, error_type=error_type,
        retry_after=Duration(seconds=600))]), timeout=5)  # fmt: skip
    info = (await inspect.GetTask(ipb.GetTaskRequest(queue=queue, task_id=held.id),
                                  timeout=5)).task  # fmt: skip
    assert (info.last_error, info.last_error_type) == (error[:16 * 1024], error_type[:256])


async def test_a_queue_weight_of_zero_counts_as_one(shared_channel: grpc.aio.Channel) -> None:
    broker = pb_grpc.BrokerServiceStub(shared_channel)
    zero, one = _queue(), _queue()
    for queue in (zero, one):
        await broker.EnqueueBatch(pb.EnqueueBatchRequest(
            tasks=[spec(queue=queue) for _ in range(200)]), timeout=5)  # fmt: skip
    # Each of the 200 slots picks a queue in proportion to the weights: about half each.
    request = pb.LeaseRequest(worker_id="w1", max_tasks=200, queues=[
        pb.QueueWeight(queue=zero, weight=0), pb.QueueWeight(queue=one, weight=1)])
    got = (await broker.Lease(request, timeout=5)).tasks
    from_zero = sum(task.queue == zero for task in got)
    assert len(got) == 200 and 60 <= from_zero <= 140, from_zero  # 0.5 +- 5.6 sd
