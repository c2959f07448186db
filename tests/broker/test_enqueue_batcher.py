"""Single enqueues share Redis round trips when they arrive while one is under way."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from store_testing import StoreEnv

from leasq_broker.batching import EnqueueBatcher
from leasq_broker.errors import StorageUnavailable
from leasq_broker.models import EnqueueStatus, LeaseGrant, TaskRecord
from leasq_broker.store import TaskStore


class TripLog(TaskStore):
    """The real store, noting how many records each enqueue round trip carried."""

    def __init__(self, env: StoreEnv) -> None:
        super().__init__(env.redis, env.store._scripts, env.keys)
        self.trips: list[int] = []
        self.trip_started = asyncio.Event()

    async def enqueue_groups(self, groups: Sequence[tuple[str, Sequence[TaskRecord]]],
                             now_ms: int, *, atomic: bool = False,
                             ) -> list[list[EnqueueStatus] | StorageUnavailable]:
        self.trips.append(sum(len(records) for _, records in groups))
        self.trip_started.set()
        return await super().enqueue_groups(groups, now_ms, atomic=atomic)


def record(task_id: str) -> TaskRecord:
    return TaskRecord(task_id, b"envelope", 0, 3, "", 0, 0, "")


async def test_enqueues_that_arrive_during_a_round_trip_go_together_in_the_next_one(
    store_env: StoreEnv,
) -> None:
    store = TripLog(store_env)
    woken: list[str] = []
    batcher = EnqueueBatcher(store, store_env.clock, woken.append)

    first = asyncio.ensure_future(batcher.submit("q", record("t0")))
    await store.trip_started.wait()  # the first trip is under way (it waits for Redis)
    later = [asyncio.ensure_future(batcher.submit("q", record(f"t{i}"))) for i in range(1, 6)]
    statuses = await asyncio.gather(first, *later)

    assert store.trips == [1, 5]
    assert statuses == [EnqueueStatus.ENQUEUED] * 6
    # Once per trip when its answer is back, and once before when Redis runs calls in order.
    assert woken == ["q", "q"] * (2 if store.writes_in_order else 1)
    pending = await store_env.redis.lrange(store_env.keys.pending("q"), 0, -1)
    assert sorted(pending) == [f"t{i}".encode() for i in range(6)]


async def test_an_idle_batcher_sends_a_lone_enqueue_at_once(store_env: StoreEnv) -> None:
    store = TripLog(store_env)
    batcher = EnqueueBatcher(store, store_env.clock, lambda queue: None)

    for i in range(3):
        assert await batcher.submit("q", record(f"t{i}")) is EnqueueStatus.ENQUEUED

    assert store.trips == [1, 1, 1]


async def test_long_polls_are_woken_before_the_answer_and_their_lease_finds_the_task(
    store_env: StoreEnv,
) -> None:
    """Over one connection in call order, a Lease sent on the early wake-up reaches Redis after
    the enqueue: an idle worker's lease does not wait for the enqueue's answer."""
    store = store_env.store
    if not store.writes_in_order:
        return  # a pool of connections (Sentinel, Cluster): woken once the answer is back
    answered = False
    leases: list[asyncio.Task[list[LeaseGrant]]] = []

    def wake(queue: str) -> None:
        if not leases:  # the first wake-up; the poll leases at once, as a woken poll does
            assert not answered, "woken only once the enqueue was answered"
            leases.append(asyncio.ensure_future(store.lease(
                [(queue, 1)], now_ms=store_env.clock.now_ms(), lease_ms=30_000,
                worker_id="w1", byte_budget=1 << 20)))

    batcher = EnqueueBatcher(store, store_env.clock, wake)
    status = await batcher.submit("early", record("t-early"))
    answered = True
    assert status is EnqueueStatus.ENQUEUED
    grants = await leases[0]
    assert [grant.id for grant in grants] == ["t-early"]


async def test_a_task_due_later_is_no_reason_to_wake_before_the_answer(
    store_env: StoreEnv,
) -> None:
    woken: list[str] = []
    batcher = EnqueueBatcher(store_env.store, store_env.clock, woken.append)
    due = store_env.clock.now_ms() + 60_000
    await batcher.submit("later", TaskRecord("t-later", b"envelope", due, 3, "", 0, 0, ""))
    assert woken == ["later"]  # once, when the answer is back; a ready task wakes twice
