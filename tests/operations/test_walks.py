"""The index walks of bulk.lua and search.lua, in-process on the private Redis with tiny chunks
and search budgets (constructor parameters), so that many chunk and page boundaries are
crossed: equal scores, a cursor task that leaves between calls, the pending list."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from leasq.v1 import task_pb2
from leasq_broker.clock import ManualClock
from leasq_broker.cluster_slots import is_cluster
from leasq_broker.keys import Keys
from leasq_broker.operations.models import SearchCriteria, TaskFilter
from leasq_broker.operations.service import Operations
from leasq_broker.reader import TaskReader
from leasq_broker.scripts import Scripts
from leasq_broker.store import TaskStore
from leasq_broker.task_records import pack_record

T0 = 1_800_000_000_000
Q = "w"
KEYS = Keys("leasq")


@pytest.fixture
async def ops(redis_client: Redis) -> Operations:
    scripts = Scripts(redis_client)
    await scripts.load()
    keys = Keys("leasq", cluster=is_cluster(redis_client))
    reader = TaskReader(redis_client, keys, scripts)
    return Operations(redis_client, scripts, keys, TaskStore(redis_client, scripts, keys),
                      reader, ManualClock(T0), bulk_chunk=3, search_budget=7)


async def put(redis: Redis, state: str, count: int, *, score: int = T0,
              error_types: tuple[str, ...] = ("A", "B")) -> list[str]:
    """``count`` tasks in ``state`` written as the transitions leave them, all with one score
    (sorted states); task i has error type ``error_types[i % len]``. Ids in index order."""
    ids = [f"t{n:03d}" for n in range(count)]
    pipe = redis.pipeline()
    for n, task_id in enumerate(ids):
        env = task_pb2.LeasedTask(id=task_id, queue=Q, type=f"type-{n % 2}", payload=b"p")
        env.enqueued_at.FromMilliseconds(T0 - 1000)
        pipe.hset(KEYS.tasks(Q), task_id, pack_record({
            "s": state, "na": str(score), "mr": "25", "et": error_types[n % len(error_types)]}))
        pipe.hset(KEYS.envelopes(Q), task_id, env.SerializeToString())
        if state == "pending":
            pipe.lpush(KEYS.pending(Q), task_id)  # the first is the oldest (right end)
        else:
            pipe.zadd(getattr(KEYS, state)(Q), {task_id: score})
    await pipe.execute()
    return ids


async def test_a_filtered_run_over_equal_scores_moves_each_match_once(
    ops: Operations, redis_client: Redis
) -> None:
    ids = await put(redis_client, "archived", 20)
    assert await ops.bulk("run", Q, "archived", TaskFilter(error_type="A")) == 10
    left = [m.decode() for m in await redis_client.zrange(KEYS.archived(Q), 0, -1)]
    assert left == ids[1::2]
    pending = [m.decode() for m in await redis_client.lrange(KEYS.pending(Q), 0, -1)]
    assert list(reversed(pending)) == ids[0::2]  # oldest first at the leasing end


async def test_a_filtered_archive_walks_the_pending_list_in_chunks(
    ops: Operations, redis_client: Redis
) -> None:
    ids = await put(redis_client, "pending", 20)
    assert await ops.bulk("archive", Q, "pending", TaskFilter(type="type-1")) == 10
    pending = [m.decode() for m in await redis_client.lrange(KEYS.pending(Q), 0, -1)]
    assert list(reversed(pending)) == ids[0::2]
    assert await redis_client.zcard(KEYS.archived(Q)) == 10
    assert await ops.bulk("delete", Q, "pending", TaskFilter()) == 10


async def test_search_pages_by_budget_over_equal_scores(
    ops: Operations, redis_client: Redis
) -> None:
    ids = await put(redis_client, "retry", 20)
    found, examined, token = [], [], ""
    while True:
        page = await ops.search(Q, "retry", SearchCriteria(error_type="B"), 100, token)
        found += [t.id for t in page.tasks]
        examined.append(page.examined)
        token = page.next_page_token
        if not token:
            break
    assert examined == [7, 7, 6]
    assert found == ids[1::2]


async def test_search_goes_on_when_the_cursor_task_left(
    ops: Operations, redis_client: Redis
) -> None:
    ids = await put(redis_client, "scheduled", 20, error_types=("A",))
    first = await ops.search(Q, "scheduled", SearchCriteria(error_type="A"), 5, "")
    assert [t.id for t in first.tasks] == ids[:5]
    await redis_client.zrem(KEYS.scheduled(Q), ids[4])  # the cursor's task leaves
    await redis_client.zrem(KEYS.scheduled(Q), ids[2])  # and one before it
    found, token = [], first.next_page_token
    while token:
        page = await ops.search(Q, "scheduled", SearchCriteria(error_type="A"), 5, token)
        found += [t.id for t in page.tasks]
        token = page.next_page_token
    assert found == ids[5:]


async def test_search_over_pending_goes_on_after_the_oldest_were_leased(
    ops: Operations, redis_client: Redis
) -> None:
    ids = await put(redis_client, "pending", 12, error_types=("A",))
    first = await ops.search(Q, "pending", SearchCriteria(error_type="A"), 4, "")
    assert [t.id for t in first.tasks] == ids[:4]
    for _ in range(5):  # a worker leases the five oldest, the cursor's task among them
        await redis_client.rpop(KEYS.pending(Q))
    rest = await ops.search(Q, "pending", SearchCriteria(error_type="A"), 100,
                            first.next_page_token)
    assert [t.id for t in rest.tasks] == ids[5:]
