"""Enqueue and queue calls at their edges: instants before 1970, batches over several queues
written all or nothing, Redis refusing writes, unknown queues, fields the contract promises."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis
from broker_process import RedisProcess
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from rpc_testing import lease_request, ref, refusal, spec
from store_testing import all_keys

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import broker_service_pb2_grpc, task_pb2
from leasq.v1 import inspect_service_pb2 as ipb

YEAR_ONE = Timestamp(seconds=-62_135_596_800)
BEFORE_1970 = Timestamp(seconds=-1, nanos=999_000_000)


def ms(timestamp: Any) -> float:
    return timestamp.seconds * 1000 + timestamp.nanos / 1e6


@pytest.mark.parametrize("instant", [YEAR_ONE, BEFORE_1970, Timestamp()],
                         ids=["year 1", "just before 1970", "the epoch"])
async def test_a_process_at_long_past_means_now(broker_stub: Any, instant: Timestamp) -> None:
    before = time.time() * 1000
    single = (await broker_stub.Enqueue(pb.EnqueueRequest(task=spec(process_at=instant)))).task
    batch = await broker_stub.EnqueueBatch(pb.EnqueueBatchRequest(tasks=[
        spec(queue="a"), spec(queue="b", process_at=instant), spec(queue="a", process_at=instant),
    ]))
    assert batch.enqueued_count == 3
    for task in [single, *(r.task for r in batch.results)]:
        assert task.state == task_pb2.TASK_STATE_PENDING
        assert before - 1000 <= ms(task.next_process_at) <= time.time() * 1000 + 1000
    leased = await broker_stub.Lease(lease_request("a", "b", "default", max_tasks=10))
    assert len(leased.tasks) == 4


async def test_a_repeated_batch_with_task_ids_answers_each_item_truly(broker_stub: Any) -> None:
    tasks = [spec(queue=q, task_id=f"id-{q}-{n}") for q in ("a", "b", "c") for n in range(3)]
    tasks.append(spec(queue="a", task_id="bad id"))
    first = await broker_stub.EnqueueBatch(pb.EnqueueBatchRequest(tasks=tasks))
    assert first.enqueued_count == 9
    assert first.results[9].error.field == "tasks[9].task_id"
    again = await broker_stub.EnqueueBatch(pb.EnqueueBatchRequest(tasks=tasks))
    assert again.enqueued_count == 0
    assert [r.error.reason for r in again.results] == ["TASK_ID_CONFLICT"] * 9 + ["INVALID_FIELD"]


@pytest.fixture
def full_redis(tmp_path: Path) -> Iterator[tuple[str, redis.Redis]]:
    """A private Redis of its own (its memory limit is changed) and a client on it."""
    server = RedisProcess(tmp_path)
    url = server.start()
    client = redis.Redis.from_url(url)
    try:
        yield url, client
    finally:
        client.close()
        server.stop()


async def test_a_batch_redis_refuses_writes_nothing_and_fails_unavailable(
    broker_factory: Any, full_redis: tuple[str, redis.Redis]
) -> None:
    url, client = full_redis
    broker = broker_factory(redis_url=url)
    tasks = [spec(queue=q, task_id=f"id-{q}") for q in ("a", "b", "c")]
    async with grpc.aio.insecure_channel(broker.address) as channel:
        stub = broker_service_pb2_grpc.BrokerServiceStub(channel)
        client.config_set("maxmemory", "1")
        try:
            got = await refusal(stub.EnqueueBatch(pb.EnqueueBatchRequest(tasks=tasks)))
            assert (got.code, got.reason) == (grpc.StatusCode.UNAVAILABLE, "STORAGE_UNAVAILABLE")
            single = await refusal(stub.Enqueue(pb.EnqueueRequest(task=spec())))
            assert (single.code, single.reason) == (grpc.StatusCode.UNAVAILABLE,
                                                    "STORAGE_UNAVAILABLE")
        finally:
            client.config_set("maxmemory", "0")
        # Only the versions of the due indexes and the storage layout, written at start.
        assert sorted(client.keys("leasq:{*")) == [b"leasq:{~due}:version",
                                                   b"leasq:{~meta}:layout"]
        retried = await stub.EnqueueBatch(pb.EnqueueBatchRequest(tasks=tasks))
        assert retried.enqueued_count == 3


async def test_pause_and_resume_of_an_unknown_queue_are_not_found_and_create_nothing(
    broker_stub: Any, inspect_stub: Any, redis_client: Any
) -> None:
    for call in (inspect_stub.PauseQueue(ipb.PauseQueueRequest(queue="typo")),
                 inspect_stub.ResumeQueue(ipb.ResumeQueueRequest(queue="typo"))):
        got = await refusal(call)
        assert (got.code, got.reason) == (grpc.StatusCode.NOT_FOUND, "QUEUE_NOT_FOUND")
        assert "typo" in got.message
    assert list((await inspect_stub.ListQueues(ipb.ListQueuesRequest())).queues) == []
    assert await all_keys(redis_client, "*typo*") == []
    await broker_stub.Enqueue(pb.EnqueueRequest(task=spec(queue="known")))
    assert (await inspect_stub.PauseQueue(ipb.PauseQueueRequest(queue="known"))).paused
    assert list((await broker_stub.Lease(lease_request("known"))).tasks) == []
    listed = (await inspect_stub.ListQueues(ipb.ListQueuesRequest())).queues
    assert [(q.queue, q.paused) for q in listed] == [("known", True)]
    assert not (await inspect_stub.ResumeQueue(ipb.ResumeQueueRequest(queue="known"))).paused


async def test_every_leased_task_has_an_attempt_deadline(broker_stub: Any) -> None:
    deadline = Timestamp(seconds=int(time.time()) + 600)
    await broker_stub.Enqueue(pb.EnqueueRequest(task=spec(queue="plain")))
    await broker_stub.Enqueue(pb.EnqueueRequest(task=spec(queue="dl", deadline=deadline)))
    await broker_stub.Enqueue(pb.EnqueueRequest(task=spec(
        queue="both", deadline=deadline, timeout=Duration(seconds=5))))
    for queue, expected in (("plain", 30 * 60 * 1000), ("dl", None), ("both", 5000)):
        task = (await broker_stub.Lease(lease_request(queue))).tasks[0]
        assert task.HasField("attempt_deadline"), queue
        leased_at = ms(task.lease_expires_at) - 15_000  # the default lease duration
        if expected is None:
            assert task.attempt_deadline == deadline
        else:
            assert ms(task.attempt_deadline) - leased_at == expected


async def test_nack_answers_the_epoch_for_archived_and_refused_items(broker_stub: Any) -> None:
    await broker_stub.EnqueueBatch(pb.EnqueueBatchRequest(tasks=[spec(), spec()]))
    held = (await broker_stub.Lease(lease_request(max_tasks=2))).tasks
    answer = await broker_stub.Nack(pb.NackRequest(worker_id="w1", items=[
        pb.NackItem(lease=ref(held[0]), action=pb.NACK_ACTION_ARCHIVE),
        pb.NackItem(lease=ref(held[1], token="stale"), action=pb.NACK_ACTION_RETRY),
        pb.NackItem(lease=ref(held[1]), action=pb.NACK_ACTION_REQUEUE),
    ]))
    assert [r.error.reason for r in answer.results] == ["", "LEASE_LOST", ""]
    assert answer.next_process_at[0] == Timestamp()
    assert answer.next_process_at[1] == Timestamp()
    assert ms(answer.next_process_at[2]) > 0
