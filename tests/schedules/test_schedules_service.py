"""The schedules use case on a real Redis with a manual clock: exactly once across replicas,
catch-up after downtime, overlap, DST, pause, trigger, history and refusals."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from redis.asyncio import Redis
from store_testing import all_keys

from leasq_broker.clock import ManualClock
from leasq_broker.errors import InvalidField
from leasq_broker.schedules.models import CatchUp, FireStatus, Overlap, ScheduleDef, Template
from leasq_broker.schedules.service import Schedules

ScheduleReplica = Callable[[], Schedules]

SECOND, MINUTE, HOUR = 1000, 60_000, 3_600_000


def every(name: str = "s", spec: str = "@every 1s", **fields: object) -> ScheduleDef:
    queue = str(fields.pop("queue", "q"))
    template = Template("t:tick", b"{}", queue=queue)
    for key in ("unique_ttl_ms", "deadline_after_ms"):
        if key in fields:
            setattr(template, key, fields.pop(key))
    return ScheduleDef(name, spec, template, **fields)  # type: ignore[arg-type]


async def drain(schedules: Schedules) -> None:
    while (await schedules.fire_due()).more_due:
        pass


async def fired_ids(redis: Redis, queue: str = "q") -> list[str]:
    pending = await redis.lrange(f"leasq:{{{queue}}}:pending", 0, -1)
    scheduled = await redis.zrange(f"leasq:{{{queue}}}:scheduled", 0, -1)
    return sorted(i.decode() for i in [*pending, *scheduled])


async def test_three_replicas_fire_every_tick_exactly_once(
    replica_factory: ScheduleReplica, clock: ManualClock, redis_client: Redis
) -> None:
    replicas = [replica_factory() for _ in range(3)]
    view, created = await replicas[0].upsert(every())
    assert created and view.next_fire_ms is not None
    first = view.next_fire_ms
    clock.advance(first - clock.now_ms())
    for _ in range(60):
        await asyncio.gather(*(r.fire_due() for r in replicas))
        clock.advance(SECOND)
    expected = sorted(f"sch:s:{first + i * SECOND}" for i in range(60))
    assert await fired_ids(redis_client) == expected


async def test_fired_task_carries_schedule_headers_and_deadline_after_its_tick(
    schedules: Schedules, clock: ManualClock, redis_client: Redis
) -> None:
    view, _ = await schedules.upsert(every(deadline_after_ms=30 * SECOND))
    tick = view.next_fire_ms or 0
    clock.advance(tick - clock.now_ms())
    await drain(schedules)
    [fire] = await schedules.fires("s", 5)
    assert (fire.status, fire.tick_ms, fire.task_id, fire.task_state) == (
        FireStatus.FIRED, tick, f"sch:s:{tick}", "pending")
    from leasq.v1 import task_pb2
    envelope = await redis_client.hget("leasq:{q}:env", f"sch:s:{tick}")
    task = task_pb2.LeasedTask.FromString(envelope)
    assert task.headers["leasq-schedule"] == "s"
    assert task.headers["leasq-schedule-tick"] == datetime.fromtimestamp(
        tick / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert task.deadline.ToMilliseconds() == tick + 30 * SECOND


@pytest.mark.parametrize(("policy", "expected_fires"), [
    (CatchUp.SKIP, 0), (CatchUp.ONE, 1), (CatchUp.ALL, 10)])
async def test_catch_up_after_ten_minutes_down(
    schedules: Schedules, clock: ManualClock, redis_client: Redis, policy: CatchUp,
    expected_fires: int,
) -> None:
    view, _ = await schedules.upsert(every(spec="* * * * *", catch_up=policy))
    first = view.next_fire_ms or 0
    clock.advance(first - clock.now_ms() + 9 * MINUTE + 30 * SECOND)  # ticks 0..9 missed
    await drain(schedules)
    ids = await fired_ids(redis_client)
    assert len(ids) == expected_fires
    if policy is CatchUp.ONE:
        assert ids == [f"sch:s:{first + 9 * MINUTE}"]
    if policy is CatchUp.SKIP:
        [missed] = await schedules.fires("s", 5)
        assert (missed.status, missed.tick_ms, missed.missed_count) == (
            FireStatus.MISSED, first, 10)
    after = await schedules.get("s")
    assert after.next_fire_ms == first + 10 * MINUTE


async def test_overlap_skip_waits_for_the_previous_task_to_finish(
    schedules: Schedules, clock: ManualClock, redis_client: Redis
) -> None:
    view, _ = await schedules.upsert(every(overlap=Overlap.SKIP))
    first = view.next_fire_ms or 0
    clock.advance(first - clock.now_ms())
    await drain(schedules)
    clock.advance(SECOND)
    await drain(schedules)
    assert await fired_ids(redis_client) == [f"sch:s:{first}"]
    skipped = (await schedules.fires("s", 1))[0]
    assert (skipped.status, skipped.task_id) == (FireStatus.SKIPPED_OVERLAP, f"sch:s:{first}")
    await redis_client.hdel("leasq:{q}:tasks", f"sch:s:{first}")  # the task finished
    await redis_client.hdel("leasq:{q}:env", f"sch:s:{first}")
    await redis_client.delete("leasq:{q}:pending")
    clock.advance(SECOND)
    await drain(schedules)
    assert await fired_ids(redis_client) == [f"sch:s:{first + 2 * SECOND}"]


@pytest.mark.parametrize(("start", "days", "expected"), [
    ((2026, 3, 27), 4, ["2026-03-28T02:30:00+01:00", "2026-03-30T02:30:00+02:00"]),
    ((2026, 10, 24), 3, ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]),
])
async def test_daylight_saving_changes_skip_or_dedupe_wall_clock_ticks(
    schedules: Schedules, clock: ManualClock, redis_client: Redis,
    start: tuple[int, int, int], days: int, expected: list[str],
) -> None:
    berlin = ZoneInfo("Europe/Berlin")
    begin = int(datetime(*start, 12, 0, tzinfo=berlin).timestamp() * 1000)
    clock.advance(begin - clock.now_ms())
    await schedules.upsert(every(spec="30 2 * * *", time_zone="Europe/Berlin"))
    for _ in range(days * 24 * 4):  # every quarter of an hour for `days` days
        clock.advance(15 * MINUTE)
        await drain(schedules)
    ticks = sorted(int(i.split(":")[-1]) for i in await fired_ids(redis_client))
    shown = [datetime.fromtimestamp(t / 1000, berlin).isoformat() for t in ticks]
    assert shown[:2] == expected
    assert len(shown) == 3  # 4 days with one skipped, 3 days with one repeated hour


async def test_upsert_keeps_the_next_tick_unless_the_timing_changes(
    schedules: Schedules, clock: ManualClock
) -> None:
    first, _ = await schedules.upsert(every(spec="@every 1h"))
    clock.advance(10 * MINUTE)
    again, created = await schedules.upsert(every(spec="@every 1h"))
    assert not created and again.next_fire_ms == first.next_fire_ms
    changed, _ = await schedules.upsert(every(spec="@every 1m"))
    assert changed.next_fire_ms == clock.now_ms() - clock.now_ms() % MINUTE + MINUTE


async def test_ticks_while_paused_never_fire(
    schedules: Schedules, clock: ManualClock, redis_client: Redis
) -> None:
    await schedules.upsert(every(catch_up=CatchUp.ALL))
    paused = await schedules.set_paused("s", True)
    assert paused.definition.paused and paused.next_fire_ms is None
    clock.advance(30 * SECOND)
    await drain(schedules)
    resumed = await schedules.set_paused("s", False)
    assert resumed.next_fire_ms == clock.now_ms() - clock.now_ms() % SECOND + SECOND
    await drain(schedules)
    assert await fired_ids(redis_client) == []


async def test_trigger_fires_now_without_moving_the_next_tick(
    schedules: Schedules, clock: ManualClock, redis_client: Redis
) -> None:
    _view, _ = await schedules.upsert(every(spec="@daily", paused=True))
    result = await schedules.trigger("s")
    assert result.id == f"sch:s:manual:{clock.now_ms()}"
    assert await fired_ids(redis_client) == [result.id]
    [fire] = await schedules.fires("s", 5)
    assert fire.status is FireStatus.MANUAL
    assert (await schedules.get("s")).definition.paused


async def test_a_fire_refused_by_the_unique_lock_is_recorded_and_the_schedule_goes_on(
    schedules: Schedules, clock: ManualClock, redis_client: Redis
) -> None:
    view, _ = await schedules.upsert(every(unique_ttl_ms=HOUR))
    clock.advance((view.next_fire_ms or 0) - clock.now_ms())
    await drain(schedules)
    clock.advance(SECOND)
    await drain(schedules)
    newest = (await schedules.fires("s", 1))[0]
    assert newest.status is FireStatus.REFUSED and "DUPLICATE_TASK" in newest.error
    assert len(await fired_ids(redis_client)) == 1
    assert (await schedules.get("s")).next_fire_ms == clock.now_ms() + SECOND


async def test_history_keeps_the_newest_fifty_fires(
    schedules: Schedules, clock: ManualClock
) -> None:
    view, _ = await schedules.upsert(every())
    clock.advance((view.next_fire_ms or 0) - clock.now_ms())
    for _ in range(60):
        await drain(schedules)
        clock.advance(SECOND)
    fires = await schedules.fires("s", 50)
    assert len(fires) == 50
    assert fires[0].tick_ms - fires[-1].tick_ms == 49 * SECOND


async def test_a_deleted_schedule_stops_firing_and_leaves_no_keys(
    schedules: Schedules, clock: ManualClock, redis_client: Redis
) -> None:
    await schedules.upsert(every(queue="gone"))
    await schedules.delete("s")
    clock.advance(5 * SECOND)
    await drain(schedules)
    assert [k.decode() for k in await all_keys(redis_client, "*sch*")] == []
    assert await fired_ids(redis_client, "gone") == []


async def test_a_schedule_whose_state_was_lost_restarts_from_the_next_tick(
    schedules: Schedules, clock: ManualClock, redis_client: Redis
) -> None:
    await schedules.upsert(every())
    await redis_client.delete("leasq:{q}:schs:s")
    clock.advance(5 * SECOND)
    await drain(schedules)
    assert (await schedules.get("s")).next_fire_ms == clock.now_ms() + SECOND


@pytest.mark.parametrize(("definition", "field"), [
    (every(name=""), "schedule.name"),
    (every(name="bad name"), "schedule.name"),
    (every(name="x" * 101), "schedule.name"),
    (every(spec=""), "schedule.spec"),
    (every(spec="0 0 0 0 0"), "schedule.spec"),
    (every(time_zone="Nowhere/City"), "schedule.time_zone"),
    (every(jitter_ms=2 * HOUR), "schedule.jitter"),
    (every(catch_up_window_ms=10), "schedule.catch_up_window"),
    (every(queue="bad{queue}"), "schedule.template.queue"),
    (every(deadline_after_ms=0), "schedule.template.deadline_after"),
])
async def test_bad_definitions_are_refused_naming_the_field_and_nothing_is_stored(
    schedules: Schedules, redis_client: Redis, definition: ScheduleDef, field: str
) -> None:
    with pytest.raises(InvalidField) as refused:
        await schedules.upsert(definition)
    assert refused.value.field == field
    assert await all_keys(redis_client, "*sch*") == []
