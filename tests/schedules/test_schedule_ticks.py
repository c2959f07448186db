"""Cron and interval ticks: wall-clock matching in a time zone, DST, macros, seconds, errors."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from leasq_broker.schedules.ticks import SpecError, parse_duration_ms, ticker

BERLIN = ZoneInfo("Europe/Berlin")


def ms(*args: int, tz: ZoneInfo = BERLIN) -> int:
    return int(datetime(*args, tzinfo=tz).timestamp() * 1000)  # type: ignore[misc]


def walk(spec: str, start: int, count: int, time_zone: str = "Europe/Berlin") -> list[str]:
    parsed, tick, out = ticker(spec, time_zone), start, []
    for _ in range(count):
        tick = parsed.next_after(tick)
        out.append(datetime.fromtimestamp(tick / 1000, BERLIN).isoformat())
    return out


def test_a_wall_clock_time_skipped_by_daylight_saving_does_not_fire() -> None:
    # Berlin springs forward on 2026-03-29 from 02:00 to 03:00: 02:30 does not exist that day.
    assert walk("30 2 * * *", ms(2026, 3, 27, 12, 0), 3) == [
        "2026-03-28T02:30:00+01:00", "2026-03-30T02:30:00+02:00", "2026-03-31T02:30:00+02:00"]


def test_a_wall_clock_time_that_happens_twice_fires_once_at_its_first_occurrence() -> None:
    # Berlin falls back on 2026-10-25 from 03:00 to 02:00: 02:30 happens at +02:00 and +01:00.
    assert walk("30 2 * * *", ms(2026, 10, 24, 12, 0), 2) == [
        "2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]


def test_from_inside_the_repeated_hour_the_next_tick_is_after_the_repeat() -> None:
    second_0210 = ms(2026, 10, 25, 1, 10, tz=UTC)  # 02:10 +01:00, the second 02:10
    assert walk("30 2 * * *", second_0210, 1) == ["2026-10-26T02:30:00+01:00"]


def test_monthly_report_fires_on_the_first_at_nine_berlin_time() -> None:
    assert walk("0 9 1 * *", ms(2026, 12, 1, 9, 0), 2) == [
        "2027-01-01T09:00:00+01:00", "2027-02-01T09:00:00+01:00"]


def test_six_fields_put_seconds_first() -> None:
    start = ms(2026, 1, 1, 0, 0, tz=UTC)
    assert ticker("*/15 * * * * *").next_after(start) == start + 15_000


@pytest.mark.parametrize(("macro", "expected"), [
    ("@hourly", ms(2026, 1, 1, 1, 0, tz=UTC)), ("@daily", ms(2026, 1, 2, 0, 0, tz=UTC)),
    ("@midnight", ms(2026, 1, 2, 0, 0, tz=UTC)), ("@weekly", ms(2026, 1, 4, 0, 0, tz=UTC)),
    ("@monthly", ms(2026, 2, 1, 0, 0, tz=UTC)), ("@yearly", ms(2027, 1, 1, 0, 0, tz=UTC)),
])
def test_macros_fire_at_the_start_of_their_period(macro: str, expected: int) -> None:
    assert ticker(macro).next_after(ms(2026, 1, 1, 0, 0, tz=UTC)) == expected


def test_intervals_are_aligned_to_the_epoch_so_every_replica_agrees() -> None:
    every = ticker("@every 1m30s")
    assert every.next_after(100_000) == 180_000
    assert every.next_after(180_000) == 270_000
    assert every.last_at_or_before(269_999) == 180_000


def test_last_tick_at_or_before_an_instant_includes_the_instant() -> None:
    daily = ticker("0 9 * * *", "Europe/Berlin")
    nine = ms(2026, 6, 1, 9, 0)
    assert daily.last_at_or_before(nine) == nine
    assert daily.last_at_or_before(nine - 1) == ms(2026, 5, 31, 9, 0)


@pytest.mark.parametrize(("spec", "zone", "fragment"), [
    ("* * *", "", "5 fields"),
    ("61 * * * *", "", "invalid cron spec"),
    ("0 0 30 2 *", "", "invalid cron spec"),
    ("@often", "", "unknown macro"),
    ("@every 500ms", "", "between 1s"),
    ("@every soon", "", "invalid duration"),
    ("0 9 * * *", "Mars/Olympus", "unknown time zone"),
])
def test_bad_specs_and_zones_are_refused_with_the_reason(spec: str, zone: str,
                                                         fragment: str) -> None:
    with pytest.raises(SpecError, match=fragment):
        ticker(spec, zone)


def test_durations_read_go_style_units() -> None:
    assert parse_duration_ms("1h30m") == 5_400_000
    assert parse_duration_ms("2d") == 172_800_000
    assert parse_duration_ms("250ms") == 250
    with pytest.raises(SpecError):
        parse_duration_ms("10 minutes")
