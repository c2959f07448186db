"""DeleteQueue with force over many groups: every group and member goes (each group through
the same transition as DeleteGroup, a hundred groups per round trip), counted among the
deleted tasks, and no key of the queue is left."""

from __future__ import annotations

from operations_testing import enqueue
from redis.asyncio import Redis

from leasq_sdk import AsyncClient, TaskRequest

GROUPS = 150  # more than one round of group deletions


async def test_a_forced_delete_removes_every_group_and_member(
    aclient: AsyncClient, redis_client: Redis,
) -> None:
    results = await aclient.enqueue_many(
        [TaskRequest("t:g", f"{n}", queue="grouped", group=f"g{n % GROUPS}")
         for n in range(2 * GROUPS)])
    assert not any(isinstance(r, Exception) for r in results)
    await enqueue(aclient, "grouped", 10)
    stats = await aclient.queue_stats("grouped")
    assert (stats.aggregating, stats.pending) == (2 * GROUPS, 10)

    assert await aclient.delete_queue("grouped", force=True) == 2 * GROUPS + 10

    left = [k.decode() async for k in redis_client.scan_iter("leasq:{grouped}:*")]
    assert left == []
    assert not await redis_client.sismember("leasq:{~groups}:queues", "grouped")
    assert [q.queue for q in await aclient.list_queues()] == []
