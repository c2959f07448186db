"""When a schedule's spec fires: cron expressions (via croniter) and ``@every`` intervals.

Ticks are instants in ms since the epoch. Cron specs are matched against the wall clock of the
schedule's time zone: croniter walks naive local times (each wall-clock minute once), and each
candidate is turned into an instant with :mod:`zoneinfo`. A wall-clock time that does not exist
(the hour skipped when daylight saving starts) is passed over, and one that happens twice is
fired at its first occurrence only, because the walk meets it once. ``@every`` ticks are
multiples of the interval since the epoch, so every replica and every restart agrees on them.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

MIN_INTERVAL_MS = 1000
MAX_INTERVAL_MS = 366 * 24 * 3600 * 1000
# A cron spec that matches nothing within this many years (e.g. "0 0 30 2 *") is refused.
MAX_YEARS_BETWEEN = 5
MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d)")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


class SpecError(ValueError):
    """A spec, time zone or duration that cannot be used; the message says why."""


def parse_duration_ms(text: str) -> int:
    """A Go-style duration ("1h30m", "45s", "500ms", "2d") in ms."""
    compact = text.strip().replace(" ", "")
    if not compact or _DURATION_PART.sub("", compact):
        raise SpecError(
            f"invalid duration {text!r}: use numbers with units ms, s, m, h or d, e.g. '1h30m'"
        )
    return sum(int(n) * _UNIT_MS[unit] for n, unit in _DURATION_PART.findall(compact))


def zone(name: str) -> ZoneInfo:
    """The IANA time zone called ``name`` ("" is UTC)."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SpecError(f"unknown time zone {name!r}: use an IANA name like 'Europe/Berlin'") \
            from exc


@dataclass(frozen=True, slots=True)
class Interval:
    """``@every <duration>``: ticks at every multiple of ``every_ms`` since the epoch."""

    every_ms: int

    def next_after(self, ms: int) -> int:
        return (ms // self.every_ms + 1) * self.every_ms

    def last_at_or_before(self, ms: int) -> int:
        return (ms // self.every_ms) * self.every_ms

    def count_between(self, start_ms: int, end_ms: int, limit: int) -> int:
        """Ticks in [start_ms, end_ms), or 0 when more than ``limit``."""
        count = max(0, (end_ms - 1) // self.every_ms - (start_ms - 1) // self.every_ms)
        return count if count <= limit else 0


@dataclass(frozen=True, slots=True)
class Cron:
    """A cron expression on the wall clock of ``tz``."""

    expression: str
    tz: ZoneInfo
    seconds_first: bool

    def _walk(self, ms: int, *, backwards: bool) -> croniter:
        local = datetime.fromtimestamp(ms / 1000, self.tz).replace(tzinfo=None)
        return croniter(self.expression, local, second_at_beginning=self.seconds_first,
                        max_years_between_matches=MAX_YEARS_BETWEEN, is_prev=backwards)

    def _instant(self, local: datetime) -> int | None:
        """The instant of a wall-clock time (first occurrence), None when it does not exist."""
        aware = local.replace(tzinfo=self.tz, fold=0)
        back = aware.astimezone(UTC).astimezone(self.tz).replace(tzinfo=None)
        if back != local:
            return None
        return int(aware.timestamp() * 1000)

    def next_after(self, ms: int) -> int:
        walk = self._walk(ms, backwards=False)
        while True:
            instant = self._instant(walk.get_next(datetime))
            if instant is not None and instant > ms:
                return instant

    def last_at_or_before(self, ms: int) -> int:
        walk = self._walk(ms + 1000, backwards=True)
        while True:
            instant = self._instant(walk.get_prev(datetime))
            if instant is not None and instant <= ms:
                return instant

    def count_between(self, start_ms: int, end_ms: int, limit: int) -> int:
        count, tick = 0, start_ms - 1
        while (tick := self.next_after(tick)) < end_ms:
            count += 1
            if count > limit:
                return 0
        return count


Ticker = Interval | Cron


@functools.lru_cache(maxsize=4096)
def ticker(spec: str, time_zone: str = "") -> Ticker:
    """Parse a spec (cached: schedules fire often and specs repeat)."""
    text = spec.strip()
    tz = zone(time_zone)  # checked for intervals too: a typo must not pass silently
    if text.startswith("@every"):
        every = parse_duration_ms(text.removeprefix("@every"))
        if not MIN_INTERVAL_MS <= every <= MAX_INTERVAL_MS:
            raise SpecError("an @every interval must be between 1s and 366d")
        return Interval(every)
    if text.startswith("@"):
        if text not in MACROS:
            raise SpecError(f"unknown macro {text!r}: use one of {', '.join(MACROS)} or @every")
        seconds_first = False
    else:
        fields = text.split()
        if len(fields) not in (5, 6):
            raise SpecError(
                f"a cron spec has 5 fields (minute hour day month weekday) or 6 with seconds "
                f"first; got {len(fields)}"
            )
        seconds_first = len(fields) == 6
    cron = Cron(text, tz, seconds_first)
    try:
        cron.next_after(int(datetime(2000, 1, 1, tzinfo=UTC).timestamp() * 1000))
    except (CroniterError, ValueError, KeyError) as exc:
        raise SpecError(f"invalid cron spec {text!r}: {exc}") from exc
    return cron


