"""A filtered bulk move over the PENDING list walks it from its leasing end with a cursor that
must survive the list changing between chunks: leases take tasks at that end (the cursor's
position moves), enqueues add tasks at the other (it does not). No task may be skipped, moved
twice, or both moved and leased."""

from __future__ import annotations

import asyncio

from operations_testing import ack, enqueue, lease
from redis.asyncio import Redis

from leasq.v1 import broker_service_pb2_grpc as pb_grpc
from leasq_sdk import AsyncClient

QUEUE = "walk"
EACH = 1500  # 3,000 pending tasks: a dozen chunks


async def pending_ids(redis_client: Redis) -> list[str]:
    return [raw.decode() for raw in await redis_client.lrange(f"leasq:{{{QUEUE}}}:pending", 0, -1)]


async def test_filtered_archive_of_pending_while_a_worker_leases_misses_and_repeats_nothing(
    aclient: AsyncClient, broker_stub: pb_grpc.BrokerServiceStub, redis_client: Redis,
) -> None:
    # Interleaved types, so that every chunk both moves tasks and leaves some in place.
    for n in range(0, EACH, 500):
        await enqueue(aclient, QUEUE, 500, task_type="t:move", prefix=f"m{n}-")
        await enqueue(aclient, QUEUE, 500, task_type="t:keep", prefix=f"k{n}-")
    leased: list[str] = []
    done = asyncio.Event()

    async def worker() -> None:
        while not done.is_set():
            tasks = await lease(broker_stub, QUEUE, 20)
            leased.extend(t.id for t in tasks)
            if tasks:
                await ack(broker_stub, tasks)
            else:
                await asyncio.sleep(0.01)

    running = asyncio.create_task(worker())
    try:
        archived = await aclient.archive_all(QUEUE, "pending", type="t:move")
    finally:
        done.set()
        await running

    assert len(leased) > 0, "the worker leased nothing while the walk ran: no concurrency"
    archived_ids = await _archived_ids(aclient)
    left = await pending_ids(redis_client)
    assert len(archived_ids) == archived
    assert len(leased) == len(set(leased))
    assert not archived_ids & set(leased), "a task was both archived and leased"
    assert all(task_id.startswith("m") for task_id in archived_ids)
    # Every t:move task that was never leased was archived: none is left pending.
    assert [task_id for task_id in left if task_id.startswith("m")] == []
    assert len(archived_ids) + len(leased) + len(left) == 2 * EACH


async def _archived_ids(aclient: AsyncClient) -> set[str]:
    return {task.id async for task in aclient.iter_tasks(QUEUE, "archived", page_size=1000)}


async def test_filtered_archive_of_pending_goes_on_while_tasks_are_enqueued_behind_it(
    aclient: AsyncClient, redis_client: Redis,
) -> None:
    for n in range(0, EACH, 500):
        await enqueue(aclient, QUEUE, 500, task_type="t:move", prefix=f"m{n}-")
        await enqueue(aclient, QUEUE, 500, task_type="t:keep", prefix=f"k{n}-")
    stop = asyncio.Event()
    added: list[str] = []
    before = {f"{kind}{n}-{i}" for kind in "mk" for n in range(0, EACH, 500) for i in range(500)}

    async def producer() -> None:
        n = 0
        while not stop.is_set():
            added.extend(await enqueue(aclient, QUEUE, 50, task_type="t:move", prefix=f"late{n}-"))
            n += 50

    running = asyncio.create_task(producer())
    try:
        archived = await aclient.archive_all(QUEUE, "pending", type="t:move")
    finally:
        stop.set()
        await running

    archived_ids = await _archived_ids(aclient)
    left = set(await pending_ids(redis_client))
    assert len(archived_ids) == archived
    # Every t:move task there before the call was archived; late ones may or may not be.
    assert {f"m{n}-{i}" for n in range(0, EACH, 500) for i in range(500)} <= archived_ids
    assert {f"k{n}-{i}" for n in range(0, EACH, 500) for i in range(500)} <= left
    assert archived_ids | left == before | set(added)
    assert not archived_ids & left
