"""DeleteQueue on a real broker: refusals, and a forced delete that leaves no key behind."""

from __future__ import annotations

import grpc
import pytest
from operations_testing import ack, archived, enqueue, lease
from redis.asyncio import Redis
from rpc_testing import refusal

from leasq.v1 import broker_service_pb2_grpc as pb_grpc
from leasq.v1 import inspect_service_pb2 as ipb
from leasq.v1 import inspect_service_pb2_grpc as ipb_grpc
from leasq_sdk import (
    AsyncClient,
    Client,
    QueueNotEmpty,
    QueueNotFound,
    Schedule,
    TaskRequest,
    WrongState,
)


async def queue_keys(redis_client: Redis, queue: str) -> list[str]:
    return sorted([k.decode() async for k in redis_client.scan_iter(f"leasq:{{{queue}}}:*")])


def test_an_unknown_queue_is_not_found(client: Client) -> None:
    with pytest.raises(QueueNotFound):
        client.delete_queue("no-such-queue")
    with pytest.raises(QueueNotFound):
        client.delete_queue("no-such-queue", force=True)


async def test_a_queue_holding_tasks_is_refused_without_force(
    aclient: AsyncClient, inspect_stub: ipb_grpc.InspectServiceStub
) -> None:
    await enqueue(aclient, "full", 2, process_in=60)
    denied = await refusal(inspect_stub.DeleteQueue(ipb.DeleteQueueRequest(queue="full")))
    assert (denied.code, denied.reason) == (grpc.StatusCode.FAILED_PRECONDITION,
                                            "QUEUE_NOT_EMPTY")
    assert "holds 2 tasks" in denied.message and "force" in denied.message
    with pytest.raises(QueueNotEmpty):
        await aclient.delete_queue("full")
    assert (await aclient.queue_stats("full")).scheduled == 2


async def test_group_members_count_as_tasks(aclient: AsyncClient) -> None:
    await aclient.enqueue("t:g", b"1", queue="grp", group="k")
    with pytest.raises(QueueNotEmpty):
        await aclient.delete_queue("grp")
    assert await aclient.delete_queue("grp", force=True) == 1


async def test_active_tasks_refuse_even_a_forced_delete(
    aclient: AsyncClient, broker_stub: pb_grpc.BrokerServiceStub, redis_client: Redis
) -> None:
    await enqueue(aclient, "busy", 3)
    assert len(await lease(broker_stub, "busy", 1)) == 1
    with pytest.raises(WrongState) as caught:
        await aclient.delete_queue("busy", force=True)
    assert "1 active" in str(caught.value)
    stats = await aclient.queue_stats("busy")
    assert (stats.pending, stats.active, stats.paused) == (2, 1, False)


async def test_a_forced_delete_leaves_no_key_of_the_queue(
    aclient: AsyncClient, broker_stub: pb_grpc.BrokerServiceStub, redis_client: Redis
) -> None:
    await archived(aclient, broker_stub, "doomed", 3, "Boom")  # counters, markers
    done = await enqueue(aclient, "doomed", 2, retention=3600)
    await ack(broker_stub, await lease(broker_stub, "doomed", 2))
    assert len(done) == 2
    results = await aclient.enqueue_many(  # more than a chunk, each with a unique lock
        [TaskRequest("t:x", f"{n}", queue="doomed", unique=3600) for n in range(1500)])
    assert not any(isinstance(r, Exception) for r in results)
    await enqueue(aclient, "doomed", 5, process_in=3600)
    await aclient.enqueue("t:g", b"m", queue="doomed", group="g1")
    await aclient.pause("doomed")
    await aclient.update_queue_settings("doomed", group_grace=3)
    await aclient.enqueue("t:x", b"", queue="other")
    assert await queue_keys(redis_client, "doomed")

    deleted = await aclient.delete_queue("doomed", force=True)

    assert deleted == 3 + 2 + 1500 + 5 + 1
    assert await queue_keys(redis_client, "doomed") == []
    assert [q.queue for q in await aclient.list_queues()] == ["other"]
    assert not await redis_client.sismember("leasq:{~groups}:queues", "doomed")
    assert (await aclient.queue_stats("other")).pending == 1
    # Enqueuing again makes a new, empty-handed queue (the unique locks went too).
    await aclient.enqueue("t:x", b"p", queue="doomed", unique=3600)
    stats = await aclient.queue_stats("doomed")
    assert (stats.pending, stats.paused, stats.processed_total) == (1, False, 0)


async def test_an_empty_known_queue_is_deleted_without_force(
    aclient: AsyncClient, broker_stub: pb_grpc.BrokerServiceStub, redis_client: Redis
) -> None:
    await enqueue(aclient, "empty", 1)
    await aclient.delete_all("empty", "pending")
    assert await aclient.delete_queue("empty") == 0
    assert await queue_keys(redis_client, "empty") == []
    assert await aclient.list_queues() == []


async def test_delete_queue_refuses_a_bad_name(inspect_stub: ipb_grpc.InspectServiceStub
                                               ) -> None:
    denied = await refusal(inspect_stub.DeleteQueue(ipb.DeleteQueueRequest(queue="")))
    assert (denied.code, denied.field) == (grpc.StatusCode.INVALID_ARGUMENT, "queue")


def test_schedules_that_target_a_deleted_queue_are_kept(client: Client) -> None:
    client.upsert_schedule(Schedule("nightly", "0 3 * * *", "t:report", queue="reports"))
    client.enqueue("t:x", b"", queue="reports")
    before = client.get_schedule("nightly")

    assert client.delete_queue("reports", force=True) == 1

    after = client.get_schedule("nightly")
    assert (after.schedule.queue, after.next_fire_at) == ("reports", before.next_fire_at)
