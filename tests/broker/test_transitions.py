"""One test per Lua transition: seed Redis, run the transition, compare the whole keyspace."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from store_testing import T0, StoreEnv, hold_lock, seed_task, snapshot

from leasq_broker.models import (
    EnqueueStatus,
    HeartbeatStatus,
    LeaseRef,
    NackAction,
    Settlement,
    SettleStatus,
    TaskRecord,
)
from leasq_broker.store import utc_day

Q = "q1"
P = "leasq:{q1}"
# The due indexes of the background loops (each queue filed at its next instant).
FORWARD, RECLAIM, JANITOR = "leasq:{~due}:forward", "leasq:{~due}:reclaim", "leasq:{~due}:janitor"
DAY = utc_day(T0)


async def seed(redis: Redis, task_id: str, **fields: Any) -> None:
    await seed_task(redis, Q, task_id, {"b": f"env-{task_id}", "mr": 3, **fields})


def record(task_id: str, **overrides: Any) -> TaskRecord:
    values: dict[str, Any] = dict(id=task_id, envelope=f"env-{task_id}".encode(), process_at_ms=0,
                                  max_retry=3, unique_lock="", unique_ttl_ms=0, retention_ms=0,
                                  group="")
    values.update(overrides)
    return TaskRecord(**values)


async def test_enqueue_adds_pending_and_scheduled_tasks_and_refuses_conflicts(
    store_env: StoreEnv,
) -> None:
    redis, store = store_env.redis, store_env.store
    await seed(redis, "taken", s="completed")
    lock = "abc"
    (statuses,) = await store.enqueue_groups([(Q, [
        record("a"),
        record("b", process_at_ms=T0 + 5000, group="g1", retention_ms=60000),
        record("taken"),
        record("c", unique_lock=lock, unique_ttl_ms=9000),
        record("d", unique_lock=lock, unique_ttl_ms=9000),
    ])], T0)
    assert statuses == [EnqueueStatus.ENQUEUED, EnqueueStatus.ENQUEUED,
                        EnqueueStatus.TASK_ID_CONFLICT, EnqueueStatus.ENQUEUED,
                        EnqueueStatus.DUPLICATE_TASK]
    assert await redis.zscore(f"{P}:uexp", lock) == T0 + 9000
    assert await snapshot(redis) == {
        FORWARD: [(Q, T0 + 5000)],
        "leasq:queues": ["q1"],
        f"{P}:pending": ["c", "a"],
        f"{P}:scheduled": [("b", T0 + 5000)],
        f"{P}:tasks/a": {"b": "env-a", "mr": "3", "na": str(T0), "s": "pending"},
        f"{P}:tasks/b": {"b": "env-b", "mr": "3", "na": str(T0 + 5000), "s": "scheduled",
                         "g": "g1", "rt": "60000"},
        f"{P}:tasks/c": {"b": "env-c", "mr": "3", "na": str(T0), "s": "pending", "uk": lock,
                         "ut": "9000"},
        f"{P}:tasks/taken": {"b": "env-taken", "mr": "3", "s": "completed"},
        f"{P}:ulocks": {lock: "c"},
        f"{P}:uexp": [(lock, T0 + 9000)],
    }


async def test_lease_forwards_due_tasks_then_leases_oldest_first(store_env: StoreEnv) -> None:
    redis, store = store_env.redis, store_env.store
    await seed(redis, "old", s="pending", na=T0 - 10)
    await seed(redis, "new", s="pending", na=T0 - 5, r=2, ll=1)
    await seed(redis, "due", s="scheduled", na=T0 - 1)
    await seed(redis, "later", s="retry", na=T0 + 1000)
    await redis.lpush(f"{P}:pending", "old", "new")
    await redis.zadd(f"{P}:scheduled", {"due": T0 - 1})
    await redis.zadd(f"{P}:retry", {"later": T0 + 1000})
    grants = await store.lease([(Q, 2)], now_ms=T0, lease_ms=15000, worker_id="w1",
                               byte_budget=1 << 20)
    assert [(g.id, g.envelope, g.retried, g.lease_lost_count) for g in grants] == [
        ("old", b"env-old", 0, 0), ("new", b"env-new", 2, 1)]
    token_prefix = grants[0].lease_token.rsplit(".", 1)[0]
    exp = str(T0 + 15000)
    assert await snapshot(redis) == {
        RECLAIM: [(Q, T0 + 15000)],
        f"{P}:pending": ["due"],
        f"{P}:retry": [("later", T0 + 1000)],
        f"{P}:active": [("new", T0 + 15000), ("old", T0 + 15000)],
        f"{P}:settings": {"ll": str(T0)},
        f"{P}:tasks/old": {"b": "env-old", "mr": "3", "na": str(T0 - 10), "s": "active", "w": "w1",
                           "lx": exp, "tk": f"{token_prefix}.1", "ld": "15000", "la": str(T0)},
        f"{P}:tasks/new": {"b": "env-new", "mr": "3", "na": str(T0 - 5), "r": "2", "ll": "1",
                           "s": "active", "w": "w1", "lx": exp, "tk": f"{token_prefix}.2",
                           "ld": "15000", "la": str(T0)},
        f"{P}:tasks/due": {"b": "env-due", "mr": "3", "na": str(T0 - 1), "s": "pending"},
        f"{P}:tasks/later": {"b": "env-later", "mr": "3", "na": str(T0 + 1000), "s": "retry"},
    }


async def test_lease_skips_a_paused_queue_and_stops_at_the_byte_budget(store_env: StoreEnv) -> None:
    redis, store = store_env.redis, store_env.store
    for task_id in ("x", "y"):
        await seed(redis, task_id, s="pending", na=T0)
    await redis.lpush(f"{P}:pending", "x", "y")
    await redis.set(f"{P}:paused", "1")
    before = await snapshot(redis)
    assert await store.lease([(Q, 5)], now_ms=T0, lease_ms=1000, worker_id="w",
                             byte_budget=1) == []
    assert await snapshot(redis) == before
    await redis.delete(f"{P}:paused")
    grants = await store.lease([(Q, 5)], now_ms=T0, lease_ms=1000, worker_id="w", byte_budget=1)
    assert [g.id for g in grants] == ["x"]
    assert await redis.lrange(f"{P}:pending", 0, -1) == [b"y"]


async def test_heartbeat_extends_held_leases_reports_lost_and_cancel(store_env: StoreEnv) -> None:
    redis, store = store_env.redis, store_env.store
    await seed(redis, "a", s="active", tk="t.1", ld=10000, lx=T0 + 100, w="w")
    await seed(redis, "b", s="active", tk="t.2", ld=10000, lx=T0 + 100, w="w", cx=1)
    await seed(redis, "c", s="pending", na=T0)
    await redis.zadd(f"{P}:active", {"a": T0 + 100, "b": T0 + 100})
    out = await store.heartbeat([LeaseRef(Q, "a", "t.1"), LeaseRef(Q, "b", "t.2"),
                                 LeaseRef(Q, "c", "t.3"), LeaseRef(Q, "a", "stale")],
                                now_ms=T0 + 50, lease_ms=0)
    assert [(o.status, o.expires_ms) for o in out] == [
        (HeartbeatStatus.EXTENDED, T0 + 10050), (HeartbeatStatus.CANCEL_REQUESTED, T0 + 10050),
        (HeartbeatStatus.LOST, None), (HeartbeatStatus.LOST, None)]
    state = await snapshot(redis)
    assert state[f"{P}:active"] == [("a", T0 + 10050), ("b", T0 + 10050)]
    assert state[f"{P}:tasks/a"]["lx"] == str(T0 + 10050)
    assert state[f"{P}:tasks/c"] == {"b": "env-c", "mr": "3", "na": str(T0), "s": "pending"}


async def test_ack_deletes_or_completes_tasks_releases_locks_and_counts(
    store_env: StoreEnv,
) -> None:
    redis, store = store_env.redis, store_env.store
    lock = "k"
    await seed(redis, "gone", s="active", tk="t.1", ld=1000, lx=T0, w="w", uk=lock, ut=5000)
    await seed(redis, "kept", s="active", tk="t.2", ld=1000, lx=T0, w="w", rt=60000)
    await seed(redis, "stolen", s="active", tk="other", ld=1000, lx=T0, w="w2")
    await redis.zadd(f"{P}:active", {"gone": T0, "kept": T0, "stolen": T0})
    await hold_lock(redis, Q, lock, "gone")
    out = await store.settle([
        Settlement(LeaseRef(Q, "gone", "t.1")),
        Settlement(LeaseRef(Q, "kept", "t.2"), result=b"42"),
        Settlement(LeaseRef(Q, "stolen", "t.3")),
        Settlement(LeaseRef(Q, "missing", "t.4")),
    ], T0 + 7)
    assert [o.status for o in out] == [SettleStatus.SETTLED, SettleStatus.SETTLED,
                                       SettleStatus.LEASE_LOST, SettleStatus.NOT_FOUND]
    assert await snapshot(redis) == {
        JANITOR: [(Q, T0 + 60007)],
        f"{P}:active": [("stolen", T0)],
        f"{P}:completed": [("kept", T0 + 60007)],
        f"{P}:tasks/kept": {"b": "env-kept", "mr": "3", "rt": "60000", "s": "completed",
                            "ca": str(T0 + 7), "xa": str(T0 + 60007), "res": "42"},
        f"{P}:tasks/stolen": {"b": "env-stolen", "mr": "3", "s": "active", "tk": "other",
                              "ld": "1000", "lx": str(T0), "w": "w2"},
        f"{P}:processed:{DAY}": "2",
        f"{P}:processed": "2",
        f"{P}:settled:gone": "t.1",
        f"{P}:settled:kept": "t.2",
    }


async def test_nack_retries_with_backoff_archives_when_exhausted_and_requeues(
    store_env: StoreEnv,
) -> None:
    redis, store = store_env.redis, store_env.store
    lock = "k"
    active = {"s": "active", "ld": 1000, "lx": T0, "w": "w"}
    await seed(redis, "again", tk="t.1", r=1, **active)
    await seed(redis, "after", tk="t.2", **active)
    await seed(redis, "spent", tk="t.3", r=3, uk=lock, **active)
    await seed(redis, "dead", tk="t.4", **active)
    await seed(redis, "back", tk="t.5", na=T0 - 9, **active)
    await redis.zadd(f"{P}:active", {i: T0 for i in ("again", "after", "spent", "dead", "back")})
    await hold_lock(redis, Q, lock, "spent")
    await redis.rpush(f"{P}:pending", "older")
    out = await store.settle([
        Settlement(LeaseRef(Q, "again", "t.1"), NackAction.RETRY, error="boom", error_type="E"),
        Settlement(LeaseRef(Q, "after", "t.2"), NackAction.RETRY, error="x", retry_after_ms=500),
        Settlement(LeaseRef(Q, "spent", "t.3"), NackAction.RETRY, error="y"),
        Settlement(LeaseRef(Q, "dead", "t.4"), NackAction.ARCHIVE, error="z"),
        Settlement(LeaseRef(Q, "back", "t.5"), NackAction.REQUEUE),
    ], T0)
    again_at = out[0].next_process_at_ms
    assert again_at is not None
    # retried=1: 1**4 + 15 + jitter*(1+1) seconds with jitter in [0, 30)
    assert T0 + 16_000 <= again_at <= T0 + 16_000 + 29 * 2 * 1000
    assert [o.next_process_at_ms for o in out[1:]] == [T0 + 500, None, None, T0]
    failed = {"ef": str(T0), "et": ""}
    assert await snapshot(redis) == {
        FORWARD: [(Q, T0 + 500)], JANITOR: [(Q, T0)],
        f"{P}:pending": ["older", "back"],
        f"{P}:retry": [("after", T0 + 500), ("again", again_at)],
        f"{P}:archived": [("dead", T0), ("spent", T0)],
        f"{P}:tasks/again": {"b": "env-again", "mr": "3", "s": "retry", "r": "2",
                             "na": str(again_at), "e": "boom", "et": "E", "ef": str(T0)},
        f"{P}:tasks/after": {"b": "env-after", "mr": "3", "s": "retry", "r": "1",
                             "na": str(T0 + 500), "e": "x", **failed},
        f"{P}:tasks/spent": {"b": "env-spent", "mr": "3", "s": "archived", "r": "3", "uk": lock,
                             "aa": str(T0), "e": "y", **failed},
        f"{P}:tasks/dead": {"b": "env-dead", "mr": "3", "s": "archived", "aa": str(T0), "e": "z",
                            **failed},
        f"{P}:tasks/back": {"b": "env-back", "mr": "3", "s": "pending", "na": str(T0)},
        f"{P}:processed:{DAY}": "4",
        f"{P}:processed": "4",
        f"{P}:failed:{DAY}": "4",
        f"{P}:failed": "4",
        **{f"{P}:settled:{task}": f"t.{n}"
           for n, task in enumerate(("again", "after", "spent", "dead", "back"), start=1)},
    }


async def test_reclaim_returns_expired_leases_and_archives_poison_tasks(
    store_env: StoreEnv,
) -> None:
    redis, store = store_env.redis, store_env.store
    await seed(redis, "crashed", s="active", tk="t.1", ld=1000, lx=T0 - 1, w="w")
    await seed(redis, "poison", s="active", tk="t.2", ld=1000, lx=T0 - 1, w="w", ll=2)
    await seed(redis, "alive", s="active", tk="t.3", ld=1000, lx=T0 + 500, w="w")
    await redis.zadd(f"{P}:active", {"crashed": T0 - 1, "poison": T0 - 1, "alive": T0 + 500})
    await redis.rpush(f"{P}:pending", "waiting")
    assert await store.reclaim([Q], T0, 100) == [[1, 1, T0 + 500]]
    state = await snapshot(redis)
    assert state[f"{P}:tasks/poison"]["e"].startswith("lease expired 3 times")
    del state[f"{P}:tasks/poison"]["e"]
    assert state == {
        RECLAIM: [(Q, T0 + 500)], JANITOR: [(Q, T0)],
        f"{P}:active": [("alive", T0 + 500)],
        f"{P}:pending": ["waiting", "crashed"],
        f"{P}:archived": [("poison", T0)],
        f"{P}:tasks/crashed": {"b": "env-crashed", "mr": "3", "s": "pending", "na": str(T0 - 1),
                               "ll": "1"},
        f"{P}:tasks/poison": {"b": "env-poison", "mr": "3", "s": "archived", "aa": str(T0),
                              "ll": "3", "ef": str(T0), "et": "LeaseLost"},
        f"{P}:tasks/alive": {"b": "env-alive", "mr": "3", "s": "active", "tk": "t.3", "ld": "1000",
                             "lx": str(T0 + 500), "w": "w"},
    }


async def test_forward_moves_due_tasks_and_reports_the_next_due_time(store_env: StoreEnv) -> None:
    redis, store = store_env.redis, store_env.store
    await seed(redis, "s1", s="scheduled", na=T0)
    await seed(redis, "s2", s="scheduled", na=T0 + 90)
    await seed(redis, "r1", s="retry", na=T0 - 3)
    await redis.zadd(f"{P}:scheduled", {"s1": T0, "s2": T0 + 90})
    await redis.zadd(f"{P}:retry", {"r1": T0 - 3})
    assert await store.forward([Q], T0, 100) == [[2, T0 + 90]]
    assert await snapshot(redis) == {
        FORWARD: [(Q, T0 + 90)],
        f"{P}:pending": ["r1", "s1"],
        f"{P}:scheduled": [("s2", T0 + 90)],
        f"{P}:tasks/s1": {"b": "env-s1", "mr": "3", "s": "pending", "na": str(T0)},
        f"{P}:tasks/s2": {"b": "env-s2", "mr": "3", "s": "scheduled", "na": str(T0 + 90)},
        f"{P}:tasks/r1": {"b": "env-r1", "mr": "3", "s": "pending", "na": str(T0 - 3)},
    }


async def test_janitor_removes_expired_completed_and_trims_the_archive(
    store_env: StoreEnv,
) -> None:
    redis, store = store_env.redis, store_env.store
    for task_id, state in (("done", "completed"), ("fresh", "completed"), ("a1", "archived"),
                           ("a2", "archived"), ("a3", "archived"), ("a4", "archived")):
        await seed(redis, task_id, s=state)
    await redis.zadd(f"{P}:completed", {"done": T0 - 1, "fresh": T0 + 1})
    await redis.zadd(f"{P}:archived", {"a1": T0 - 100, "a2": T0 - 50, "a3": T0 - 20,
                                       "a4": T0 - 10})
    out = await store.clean([Q], T0, archive_cutoff_ms=T0 - 60, archive_max=2, limit=100)
    assert out == [[1, 2]]
    assert await snapshot(redis) == {
        JANITOR: [(Q, T0 + 1)],
        f"{P}:completed": [("fresh", T0 + 1)],
        f"{P}:archived": [("a3", T0 - 20), ("a4", T0 - 10)],
        f"{P}:tasks/fresh": {"b": "env-fresh", "mr": "3", "s": "completed"},
        f"{P}:tasks/a3": {"b": "env-a3", "mr": "3", "s": "archived"},
        f"{P}:tasks/a4": {"b": "env-a4", "mr": "3", "s": "archived"},
    }


async def test_cancel_flags_only_active_tasks(store_env: StoreEnv) -> None:
    redis, store = store_env.redis, store_env.store
    await seed(redis, "run", s="active")
    await seed(redis, "wait", s="pending")
    assert [await store.cancel(Q, "run"), await store.cancel(Q, "wait"),
            await store.cancel(Q, "none")] == [0, 1, 2]
    assert await snapshot(redis) == {
        f"{P}:tasks/run": {"b": "env-run", "mr": "3", "s": "active", "cx": "1"},
        f"{P}:tasks/wait": {"b": "env-wait", "mr": "3", "s": "pending"},
    }


async def test_mark_waiting_never_shortens_a_longer_wait(store_env: StoreEnv) -> None:
    redis, store = store_env.redis, store_env.store
    await store.mark_waiting([Q], 60_000)
    await store.mark_waiting([Q], 1_000)
    assert 59_000 < await redis.pttl(f"{P}:waiting") <= 60_000


async def test_run_task_makes_scheduled_retry_and_archived_tasks_pending(
    store_env: StoreEnv,
) -> None:
    redis, store = store_env.redis, store_env.store
    await seed(redis, "later", s="scheduled", na=T0 + 9)
    await seed(redis, "dead", s="archived", aa=T0 - 5, r=3)
    await seed(redis, "busy", s="active")
    await redis.zadd(f"{P}:scheduled", {"later": T0 + 9})
    await redis.zadd(f"{P}:archived", {"dead": T0 - 5})
    assert [await store.move("run", Q, i, T0) for i in ("later", "dead", "busy", "none")] == [
        0, 0, 1, 2]
    assert await snapshot(redis) == {
        f"{P}:pending": ["dead", "later"],
        f"{P}:tasks/later": {"b": "env-later", "mr": "3", "s": "pending", "na": str(T0)},
        f"{P}:tasks/dead": {"b": "env-dead", "mr": "3", "s": "pending", "na": str(T0), "r": "3"},
        f"{P}:tasks/busy": {"b": "env-busy", "mr": "3", "s": "active"},
    }


async def test_archive_task_dead_letters_waiting_tasks_and_releases_their_lock(
    store_env: StoreEnv,
) -> None:
    redis, store = store_env.redis, store_env.store
    lock = "k"
    await seed(redis, "wait", s="pending", uk=lock)
    await seed(redis, "again", s="retry")
    await seed(redis, "busy", s="active")
    await redis.lpush(f"{P}:pending", "wait")
    await redis.zadd(f"{P}:retry", {"again": T0 + 1})
    await hold_lock(redis, Q, lock, "wait")
    assert [await store.move("archive", Q, i, T0) for i in ("wait", "again", "busy")] == [0, 0, 1]
    assert await snapshot(redis) == {
        JANITOR: [(Q, T0)],
        f"{P}:archived": [("again", T0), ("wait", T0)],
        f"{P}:tasks/wait": {"b": "env-wait", "mr": "3", "s": "archived", "aa": str(T0), "uk": lock},
        f"{P}:tasks/again": {"b": "env-again", "mr": "3", "s": "archived", "aa": str(T0)},
        f"{P}:tasks/busy": {"b": "env-busy", "mr": "3", "s": "active"},
    }


async def test_delete_task_removes_any_task_but_an_active_one(store_env: StoreEnv) -> None:
    redis, store = store_env.redis, store_env.store
    lock = "k"
    await seed(redis, "wait", s="pending", uk=lock)
    await seed(redis, "done", s="completed")
    await seed(redis, "busy", s="active")
    await redis.lpush(f"{P}:pending", "wait", "other")
    await redis.zadd(f"{P}:completed", {"done": T0 + 1})
    await hold_lock(redis, Q, lock, "wait")
    assert [await store.move("delete", Q, i, T0) for i in ("wait", "done", "busy", "none")] == [
        0, 0, 1, 2]
    assert await snapshot(redis) == {
        f"{P}:pending": ["other"],
        f"{P}:tasks/busy": {"b": "env-busy", "mr": "3", "s": "active"},
    }
