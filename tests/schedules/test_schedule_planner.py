"""The planner: on-time ticks, late ticks within the grace, and each catch-up policy."""

from __future__ import annotations

from leasq_broker.schedules.models import CatchUp, FirePlan, ScheduleDef, Template
from leasq_broker.schedules.planner import LATE_GRACE_MS, plan
from leasq_broker.schedules.ticks import ticker

MINUTE = 60_000
T = 1_800_000_000_000 - 1_800_000_000_000 % MINUTE  # a whole minute
EVERY_MINUTE = ticker("* * * * *")


def definition(catch_up: CatchUp, window_ms: int = 3600 * 1000) -> ScheduleDef:
    return ScheduleDef("s", "* * * * *", Template("t"), catch_up=catch_up,
                       catch_up_window_ms=window_ms)


def test_nothing_is_planned_before_the_tick() -> None:
    assert plan(definition(CatchUp.SKIP), EVERY_MINUTE, T, T - 1) is None


def test_a_tick_late_within_the_grace_fires_whatever_the_policy() -> None:
    for policy in CatchUp:
        late = plan(definition(policy), EVERY_MINUTE, T, T + LATE_GRACE_MS)
        assert late == FirePlan(T, T + MINUTE, T)


def test_skip_drops_ticks_missed_during_ten_minutes_of_downtime() -> None:
    now = T + 10 * MINUTE + 30_000
    assert plan(definition(CatchUp.SKIP), EVERY_MINUTE, T, now) == FirePlan(
        T, T + 11 * MINUTE, None, missed_from=T, missed_count=11)


def test_skip_still_fires_the_latest_tick_when_it_is_within_the_grace() -> None:
    now = T + 10 * MINUTE + 2_000
    assert plan(definition(CatchUp.SKIP), EVERY_MINUTE, T, now) == FirePlan(
        T, T + 11 * MINUTE, T + 10 * MINUTE, missed_from=T, missed_count=10)


def test_one_fires_once_for_everything_missed_with_the_latest_tick() -> None:
    now = T + 10 * MINUTE + 30_000
    assert plan(definition(CatchUp.ONE), EVERY_MINUTE, T, now) == FirePlan(
        T, T + 11 * MINUTE, T + 10 * MINUTE)


def test_all_fires_every_missed_tick_in_turn() -> None:
    now = T + 10 * MINUTE + 30_000
    assert plan(definition(CatchUp.ALL), EVERY_MINUTE, T, now) == FirePlan(T, T + MINUTE, T)


def test_all_drops_ticks_older_than_its_window() -> None:
    now = T + 10 * MINUTE + 30_000
    planned = plan(definition(CatchUp.ALL, 5 * MINUTE), EVERY_MINUTE, T, now)
    assert planned == FirePlan(T, T + 7 * MINUTE, T + 6 * MINUTE, missed_from=T,
                               missed_count=6)
