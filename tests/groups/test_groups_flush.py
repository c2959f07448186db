"""Groups flush on grace, max delay and max size, into one PENDING task carrying every member
in join order; the flush is a guarded transition that replicas cannot repeat."""

from __future__ import annotations

import asyncio

from group_testing import Replica, ReplicaFactory
from store_testing import T0

from leasq.v1 import task_pb2
from leasq_broker.clock import ManualClock
from leasq_broker.groups.models import MAX_FLUSH_BYTES, SettingsUpdate
from leasq_broker.models import NewTask, StoredTask

QUEUE = "digests"


def task(n: int, group: str = "user:1", **fields: object) -> NewTask:
    return NewTask(type="email:digest", payload=f"p{n}".encode(), headers={"n": str(n)},
                   queue=QUEUE, task_id=f"m{n}", group=group, **fields)  # type: ignore[arg-type]


async def pending(replica: Replica) -> list[StoredTask]:
    tasks, _ = await replica.reader.list_tasks(QUEUE, "pending", 0, 1000)
    return tasks


def members(stored: StoredTask) -> list[str]:
    return [m.id for m in task_pb2.LeasedTask.FromString(stored.envelope).members]


async def test_a_group_waits_aggregating_until_its_grace_period_passes(
    replica: Replica, clock: ManualClock,
) -> None:
    for n in range(3):
        await replica.producer.enqueue(task(n))
        clock.advance(1000)
    assert (await replica.groups.flush_due()).flushed == 0
    assert await pending(replica) == []
    member = await replica.reader.get_task(QUEUE, "m1")
    assert member is not None and member.state == "aggregating"
    clock.advance(3999)  # the last join was 1 s ago: due 5 s after it
    assert (await replica.groups.flush_due()).flushed == 0
    clock.advance(1)
    done = await replica.groups.flush_due()
    [flushed] = await pending(replica)
    assert done.flushed == 1 and members(flushed) == ["m0", "m1", "m2"]
    assert await replica.reader.get_task(QUEUE, "m1") is None


async def test_a_busy_group_is_flushed_at_its_max_delay_after_the_first_join(
    replica: Replica, clock: ManualClock,
) -> None:
    await replica.groups.update_settings(QUEUE, SettingsUpdate(max_delay_ms=10_000))
    for n in range(10):  # a join every second keeps the grace period from ever passing
        await replica.producer.enqueue(task(n))
        clock.advance(1000)
    await replica.producer.enqueue(task(10))
    done = await replica.groups.flush_due()
    [flushed] = await pending(replica)
    assert done.flushed == 1 and members(flushed) == [f"m{n}" for n in range(11)]


async def test_a_group_reaching_max_size_is_flushed_by_the_enqueue_itself(
    replica: Replica,
) -> None:
    await replica.groups.update_settings(QUEUE, SettingsUpdate(max_size=3))
    results = await replica.producer.enqueue_many([task(n) for n in range(7)])
    assert all(not isinstance(r, Exception) and r.aggregating for r in results)
    flushed = await pending(replica)
    assert sorted(members(t) for t in flushed) == [["m0", "m1", "m2"], ["m3", "m4", "m5"]]
    views, _, total = await replica.groups.page(QUEUE, 0, "")
    assert total == 1 and views[0].size == 1


async def test_a_member_that_would_take_its_group_past_the_byte_cap_flushes_the_group_first(
    replica: Replica,
) -> None:
    big = 900 * 1024  # four of these are more than a flushed task may carry (3 MiB - 64 KiB)

    def heavy(n: int) -> NewTask:
        return NewTask(type="email:digest", payload=bytes([n]) * big, headers={}, queue=QUEUE,
                       task_id=f"m{n}", group="user:1")

    await replica.producer.enqueue(heavy(0))
    results = await replica.producer.enqueue_many([heavy(n) for n in range(1, 7)])
    assert all(not isinstance(r, Exception) and r.aggregating for r in results)
    flushed = await pending(replica)
    assert sorted(members(t) for t in flushed) == [["m0", "m1", "m2"], ["m3", "m4", "m5"]]
    assert all(len(t.envelope) < MAX_FLUSH_BYTES + 1024 for t in flushed)
    views, _, total = await replica.groups.page(QUEUE, 0, "")
    assert total == 1 and views[0].size == 1  # m6 waits in the next group


async def test_a_batch_filling_many_groups_flushes_some_inline_and_leaves_the_rest_due_now(
    replica: Replica, clock: ManualClock,
) -> None:
    await replica.groups.update_settings(QUEUE, SettingsUpdate(max_size=3))
    replica.store.inline_flush_members = 6  # two full groups' worth per join script
    batch = [task(10 * g + n, group=f"user:{g}") for n in range(3) for g in range(4)]
    results = await replica.producer.enqueue_many(batch)
    assert all(not isinstance(r, Exception) and r.aggregating for r in results)
    assert len(await pending(replica)) == 2
    views, _, total = await replica.groups.page(QUEUE, 0, "")
    assert total == 2 and all(v.size == 3 and v.flush_at_ms == clock.now_ms() for v in views)
    assert clock.now_ms() in replica.due_notes  # the aggregator is woken for them at once
    done = await replica.groups.flush_due()
    assert done.flushed == 2
    flushed = await pending(replica)
    assert sorted(members(t) for t in flushed) == [
        [f"m{10 * g + n}" for n in range(3)] for g in range(4)]


async def test_the_flushed_task_carries_members_group_and_the_first_members_options(
    replica: Replica, clock: ManualClock,
) -> None:
    await replica.producer.enqueue(task(0, max_retry=3, timeout_ms=9000, retention_ms=60_000))
    await replica.producer.enqueue(task(1, max_retry=7))
    clock.advance(5000)
    await replica.groups.flush_due()
    [flushed] = await pending(replica)
    leased = task_pb2.LeasedTask.FromString(flushed.envelope)
    assert leased.id == flushed.id and flushed.id.startswith("g-")
    assert (leased.type, leased.queue, leased.group) == ("email:digest", QUEUE, "user:1")
    assert leased.max_retry == 3 and leased.timeout.seconds == 9 and leased.payload == b""
    assert leased.enqueued_at.ToMilliseconds() == T0 + 5000
    assert [(m.id, m.payload, dict(m.headers), m.enqueued_at.ToMilliseconds())
            for m in leased.members] == [("m0", b"p0", {"n": "0"}, T0),
                                         ("m1", b"p1", {"n": "1"}, T0)]
    assert flushed.fields["rt"] == "60000" and flushed.fields["mr"] == "3"
    assert flushed.fields["g"] == "user:1"


async def test_groups_are_keyed_by_type_and_key_even_when_both_contain_colons(
    replica: Replica, clock: ManualClock,
) -> None:
    await replica.producer.enqueue(NewTask(type="a:b", payload=b"", headers={}, queue=QUEUE,
                                           group="c"))
    await replica.producer.enqueue(NewTask(type="a", payload=b"", headers={}, queue=QUEUE,
                                           group="b:c"))
    views, _, total = await replica.groups.page(QUEUE, 0, "")
    assert total == 2
    assert sorted((g.type, g.group) for g in views) == [("a", "b:c"), ("a:b", "c")]


async def test_replicas_racing_for_the_same_due_groups_flush_each_member_once(
    replica_factory: ReplicaFactory, clock: ManualClock,
) -> None:
    replicas = [replica_factory() for _ in range(3)]
    for g in range(20):
        await replicas[0].producer.enqueue_many(
            [task(g * 10 + n, group=f"g{g}") for n in range(10)])
    clock.advance(5000)
    passes = await asyncio.gather(*(r.groups.flush_due() for r in replicas))
    flushed = await pending(replicas[0])
    seen = [m for t in flushed for m in members(t)]
    assert sum(p.flushed for p in passes) == 20 == len(flushed)
    assert sorted(seen) == sorted(f"m{n}" for n in range(200))


async def test_a_settings_change_applies_to_the_next_due_computation(
    replica: Replica, clock: ManualClock,
) -> None:
    await replica.producer.enqueue(task(0))
    await replica.groups.update_settings(QUEUE, SettingsUpdate(grace_ms=100))
    await replica.producer.enqueue(task(1))
    [view], _, _ = await replica.groups.page(QUEUE, 0, "")
    assert view.flush_at_ms == T0 + 100
    await replica.groups.update_settings(QUEUE, SettingsUpdate(reset=frozenset({"grace_ms"})))
    assert (await replica.groups.settings(QUEUE)).grace_ms == 5000


async def test_a_new_group_reports_its_flush_instant_to_wake_the_aggregator(
    replica: Replica,
) -> None:
    await replica.producer.enqueue(task(0, group="a"))
    await replica.producer.enqueue(task(1, group="a"))
    await replica.producer.enqueue(task(2, group="b"))
    assert replica.due_notes == [T0 + 5000, T0 + 5000]
