"""Queue stats: ListQueues with every queue's stats, GetQueueStats' memory estimate and the
latency of the next pending task."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from operations_testing import enqueue, lease
from waiting import eventually

from leasq.v1 import broker_service_pb2_grpc as pb_grpc
from leasq_sdk import AsyncClient, Client


async def test_list_queues_with_stats_matches_each_queues_stats(aclient: AsyncClient) -> None:
    await enqueue(aclient, "a", 3)
    await enqueue(aclient, "b", 2, process_in=3600)
    await aclient.enqueue("t:g", b"1", queue="c", group="k")
    await aclient.pause("b")

    listed = await aclient.list_queues(include_stats=True)

    assert [q.queue for q in listed] == ["a", "b", "c"]
    for info in listed:
        assert info.stats is not None
        alone = await aclient.queue_stats(info.queue)
        assert info.stats.queue == info.queue and info.stats.paused == info.paused
        for name in ("pending", "scheduled", "aggregating", "paused", "processed_total"):
            assert getattr(info.stats, name) == getattr(alone, name), (info.queue, name)
        assert info.stats.memory_bytes == 0  # measured by GetQueueStats only
    assert [(q.stats.pending, q.stats.scheduled, q.stats.aggregating)  # type: ignore[union-attr]
            for q in listed] == [(3, 0, 0), (0, 2, 0), (0, 0, 1)]
    assert all(q.stats is None for q in await aclient.list_queues())


def test_memory_is_positive_and_grows_with_payloads(client: Client) -> None:
    assert client.queue_stats("unknown").memory_bytes == 0
    for n in range(50):
        client.enqueue("t:x", b"x" * 100, queue="small", task_id=f"s{n}")
        client.enqueue("t:x", b"x" * 10_000, queue="large", task_id=f"l{n}")
    small = client.queue_stats("small").memory_bytes
    large = client.queue_stats("large").memory_bytes
    assert small > 50 * 100
    assert large > 50 * 10_000
    assert large > 10 * small
    for n in range(50, 100):
        client.enqueue("t:x", b"x" * 10_000, queue="large", task_id=f"l{n}")
    assert client.queue_stats("large").memory_bytes > 1.8 * large


async def test_latency_counts_from_the_put_back_after_a_lost_lease(
    aclient: AsyncClient, broker_stub: pb_grpc.BrokerServiceStub
) -> None:
    assert (await aclient.queue_stats("lat")).latency == timedelta(0)
    await enqueue(aclient, "lat", 1)
    await asyncio.sleep(1.5)  # the task ages before it is leased: not synchronisation
    aged = (await aclient.queue_stats("lat")).latency
    assert aged >= timedelta(seconds=1.4)
    task = (await lease(broker_stub, "lat", 1, lease_s=1))[0]
    expiry = task.lease_expires_at.ToDatetime(tzinfo=UTC)

    async def put_back() -> bool:
        return (await aclient.queue_stats("lat")).pending == 1

    await eventually(put_back, 10, "the expired lease's task is pending again")
    latency = (await aclient.queue_stats("lat")).latency
    since_expiry = datetime.now(UTC) - expiry
    info = await aclient.get_task("lat", task.id)
    assert info.enqueued_at is not None
    since_enqueue = datetime.now(UTC) - info.enqueued_at
    # Waiting since it became pending again, not since it was first enqueued.
    assert latency <= since_expiry + timedelta(milliseconds=50)
    assert latency < since_enqueue - timedelta(seconds=2)
