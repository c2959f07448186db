"""Transitions added for deadlines, repeated settlements and releases: seed Redis, run one
transition at a fixed instant, compare the whole keyspace."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis
from store_testing import T0, StoreEnv, hold_lock, seed_task, snapshot

from leasq_broker.errors import StorageUnavailable
from leasq_broker.models import (
    EnqueueStatus,
    LeaseRef,
    NackAction,
    Settlement,
    SettleStatus,
    TaskRecord,
)
from leasq_broker.scripts import Scripts
from leasq_broker.store import SETTLED_MARKER_MS, TaskStore, utc_day

Q = "q1"
P = "leasq:{q1}"
DAY = utc_day(T0)
ACTIVE = {"s": "active", "ld": 1000, "lx": T0, "w": "w"}
FAILED_ONCE = {f"{P}:processed:{DAY}": "1", f"{P}:processed": "1", f"{P}:failed:{DAY}": "1",
               f"{P}:failed": "1"}


async def seed(redis: Redis, task_id: str, **fields: object) -> None:
    await seed_task(redis, Q, task_id, {"b": f"env-{task_id}", "mr": 3, **fields})


async def test_enqueue_records_the_deadline_of_a_task(store_env: StoreEnv) -> None:
    record = TaskRecord(id="a", envelope=b"env-a", process_at_ms=0, max_retry=3, unique_lock="",
                        unique_ttl_ms=0, retention_ms=0, group="", deadline_ms=T0 + 5000)
    assert await store_env.store.enqueue_groups([(Q, [record])], T0) == [
        [EnqueueStatus.ENQUEUED]]
    assert await snapshot(store_env.redis) == {
        "leasq:queues": [Q],
        f"{P}:pending": ["a"],
        f"{P}:tasks/a": {"b": "env-a", "mr": "3", "na": str(T0), "s": "pending",
                         "dl": str(T0 + 5000)},
    }


async def test_lease_archives_tasks_past_their_deadline_and_leases_the_next(
    store_env: StoreEnv,
) -> None:
    redis, store = store_env.redis, store_env.store
    lock = "k"
    await seed(redis, "late", s="pending", na=T0 - 9, dl=T0, uk=lock, ut=9000)
    await seed(redis, "due", s="pending", na=T0 - 5, dl=T0 + 1)
    await redis.lpush(f"{P}:pending", "late", "due")  # "late" is the oldest: popped first
    await hold_lock(redis, Q, lock, "late")
    grants = await store.lease([(Q, 1)], now_ms=T0, lease_ms=1000, worker_id="w",
                               byte_budget=1 << 20)
    assert [g.id for g in grants] == ["due"]
    state = await snapshot(redis)
    assert state[f"{P}:tasks/late"] == {
        "b": "env-late", "mr": "3", "na": str(T0 - 9), "dl": str(T0), "uk": lock, "ut": "9000",
        "s": "archived", "aa": str(T0), "ef": str(T0), "et": "DeadlineExceeded",
        "e": "the deadline passed before the task was leased"}
    assert state[f"{P}:archived"] == [("late", T0)]
    assert lock not in state
    assert state[f"{P}:tasks/due"]["s"] == "active"
    assert {k: state[k] for k in FAILED_ONCE} == FAILED_ONCE


async def test_nack_archives_a_retry_or_release_that_would_fall_after_the_deadline(
    store_env: StoreEnv,
) -> None:
    redis, store = store_env.redis, store_env.store
    await seed(redis, "late", tk="t.1", dl=T0 + 999, **ACTIVE)
    await seed(redis, "gone", tk="t.2", dl=T0 + 999, **ACTIVE)
    await seed(redis, "fits", tk="t.3", dl=T0 + 1000, **ACTIVE)
    await redis.zadd(f"{P}:active", {"late": T0, "gone": T0, "fits": T0})
    out = await store.settle([
        Settlement(LeaseRef(Q, "late", "t.1"), NackAction.RETRY, error="boom", error_type="E",
                   retry_after_ms=1000),
        Settlement(LeaseRef(Q, "gone", "t.2"), NackAction.RELEASE, error="no handler",
                   error_type="NoHandler", retry_after_ms=1000),
        Settlement(LeaseRef(Q, "fits", "t.3"), NackAction.RETRY, error="x", error_type="E",
                   retry_after_ms=1000),
    ], T0)
    assert [o.next_process_at_ms for o in out] == [None, None, T0 + 1000]
    state = await snapshot(redis)
    assert state[f"{P}:archived"] == [("gone", T0), ("late", T0)]
    assert state[f"{P}:retry"] == [("fits", T0 + 1000)]
    late, gone = state[f"{P}:tasks/late"], state[f"{P}:tasks/gone"]
    assert (late["s"], late["et"], late.get("r")) == ("archived", "DeadlineExceeded", None)
    assert late["e"] == ("the next attempt would start after the deadline; the attempt failed: "
                         "E: boom")
    assert (gone["s"], gone["et"], gone["rc"]) == ("archived", "DeadlineExceeded", "1")
    assert state[f"{P}:tasks/fits"]["r"] == "1"
    assert state[f"{P}:failed"] == "3"


async def test_reclaim_archives_an_expired_lease_past_the_deadline(store_env: StoreEnv) -> None:
    redis, store = store_env.redis, store_env.store
    await seed(redis, "late", s="active", tk="t.1", ld=1000, lx=T0 - 1, w="w", dl=T0 - 1)
    await seed(redis, "ok", s="active", tk="t.2", ld=1000, lx=T0 - 1, w="w", dl=T0 + 1)
    await redis.zadd(f"{P}:active", {"late": T0 - 1, "ok": T0 - 1})
    assert await store.reclaim([Q], T0, 100) == [[1, 1, -1]]
    assert await snapshot(redis) == {
        "leasq:{~due}:janitor": [(Q, T0)],
        f"{P}:pending": ["ok"],
        f"{P}:archived": [("late", T0)],
        f"{P}:tasks/late": {"b": "env-late", "mr": "3", "dl": str(T0 - 1), "ll": "1",
                            "s": "archived", "aa": str(T0), "ef": str(T0), "et": "DeadlineExceeded",
                            "e": "the lease expired without ack or nack (worker crashed?) and the "
                                 "deadline passed"},
        f"{P}:tasks/ok": {"b": "env-ok", "mr": "3", "dl": str(T0 + 1), "ll": "1", "s": "pending",
                          "na": str(T0 - 1)},
        **FAILED_ONCE,
    }


async def test_release_delays_without_counting_an_attempt_and_archives_at_the_cap(
    redis_client: Redis, store_env: StoreEnv,
) -> None:
    scripts = Scripts(redis_client)
    await scripts.load()
    store = TaskStore(redis_client, scripts, store_env.keys, release_cap=3)
    await seed(redis_client, "a", tk="t.1", r=2, rc=1, **ACTIVE)
    await seed(redis_client, "b", tk="t.2", rc=2, **ACTIVE)
    await redis_client.zadd(f"{P}:active", {"a": T0, "b": T0})
    out = await store.settle([
        Settlement(LeaseRef(Q, "a", "t.1"), NackAction.RELEASE, error="no handler for t:x",
                   error_type="NoHandler"),
        Settlement(LeaseRef(Q, "b", "t.2"), NackAction.RELEASE, error="no handler for t:y",
                   error_type="NoHandler", retry_after_ms=50),
    ], T0)
    assert [(o.status, o.next_process_at_ms) for o in out] == [
        (SettleStatus.SETTLED, T0 + 10_000), (SettleStatus.SETTLED, None)]
    state = await snapshot(redis_client)
    assert state[f"{P}:tasks/a"] == {"b": "env-a", "mr": "3", "r": "2", "rc": "2", "s": "retry",
                                 "na": str(T0 + 10_000), "e": "no handler for t:x",
                                 "et": "NoHandler", "ef": str(T0)}
    assert state[f"{P}:retry"] == [("a", T0 + 10_000)]
    b = state[f"{P}:tasks/b"]
    assert (b["s"], b["rc"], b["et"], b["aa"]) == ("archived", "3", "NoHandler", str(T0))
    assert b["e"].startswith("released 3 times (the release cap)")
    assert state[f"{P}:archived"] == [("b", T0)]
    assert (state[f"{P}:failed"], state[f"{P}:processed"]) == ("1", "1")


@pytest.mark.parametrize("action", [None, NackAction.RETRY, NackAction.REQUEUE])
async def test_a_repeated_settlement_with_the_same_token_is_already_settled(
    store_env: StoreEnv, action: NackAction | None,
) -> None:
    redis, store = store_env.redis, store_env.store
    await seed(redis, "a", tk="t.1", **{**ACTIVE, "lx": T0 + 10_000})
    await redis.zadd(f"{P}:active", {"a": T0 + 10_000})
    first = await store.settle([Settlement(LeaseRef(Q, "a", "t.1"), action)], T0)
    assert first[0].status is SettleStatus.SETTLED
    # Kept until the lease would have expired (10 s on), plus the slack: no longer.
    kept = await redis.pttl(f"{P}:settled:a")
    assert SETTLED_MARKER_MS + 9_000 < kept <= SETTLED_MARKER_MS + 10_000
    after = await snapshot(redis)
    again = await store.settle([
        Settlement(LeaseRef(Q, "a", "t.1"), action),
        Settlement(LeaseRef(Q, "a", "other"), action),
    ], T0 + 5)
    # Another token: the task is gone after a plain Ack, held in another state after a Nack.
    other = SettleStatus.NOT_FOUND if action is None else SettleStatus.LEASE_LOST
    assert [o.status for o in again] == [SettleStatus.ALREADY_SETTLED, other]
    assert again[0].next_process_at_ms is None
    assert await snapshot(redis) == after


async def test_an_ack_after_the_marker_expired_is_not_found_or_lost(store_env: StoreEnv) -> None:
    redis, store = store_env.redis, store_env.store
    await seed(redis, "a", tk="t.1", **ACTIVE)
    await redis.zadd(f"{P}:active", {"a": T0})
    await store.settle([Settlement(LeaseRef(Q, "a", "t.1"))], T0)
    await redis.delete(f"{P}:settled:a")  # what the marker's expiry does
    out = await store.settle([Settlement(LeaseRef(Q, "a", "t.1"))], T0)
    assert out[0].status is SettleStatus.NOT_FOUND


@pytest.mark.single_redis("a batch over queues of several Cluster slots cannot be one "
                          "transaction; on a cluster each queue's script stands alone")
async def test_an_atomic_batch_redis_refuses_writes_nothing(store_env: StoreEnv) -> None:
    redis, store = store_env.redis, store_env.store
    records = [TaskRecord(id=f"t-{q}", envelope=b"e", process_at_ms=0, max_retry=3,
                          unique_lock="", unique_ttl_ms=0, retention_ms=0, group="")
               for q in ("q1", "q2")]
    await redis.config_set("maxmemory", "1")
    try:
        with pytest.raises(StorageUnavailable, match="none of the tasks was written"):
            await store.enqueue_groups([("q1", records[:1]), ("q2", records[1:])], T0,
                                       atomic=True)
    finally:
        await redis.config_set("maxmemory", "0")
    assert await snapshot(redis) == {}
