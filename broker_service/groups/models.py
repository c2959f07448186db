"""Plain values of group aggregation: queue settings, group ids, views of groups."""

from __future__ import annotations

import re
from dataclasses import dataclass

from leasq_broker.errors import InvalidField

SECOND_MS = 1000
DEFAULT_GRACE_MS = 5 * SECOND_MS
DEFAULT_MAX_DELAY_MS = 60 * SECOND_MS
DEFAULT_MAX_SIZE = 100
# Most bytes of members one flushed task carries: below the Lease answer's budget
# (leasing.LEASE_BYTE_BUDGET, 3 MiB) with room for the task's other fields, so that every
# flushed task can be leased under gRPC's default 4 MiB message limit. A member that would
# take its group past it flushes the group first.
MAX_FLUSH_BYTES = 3 * 1024 * 1024 - 64 * 1024
# Most members one enqueue's join script flushes for groups reaching their max size; further
# full groups are made due at once and flushed by the aggregator in scripts of their own, so
# that one batch filling thousands of groups cannot hold Redis for seconds.
INLINE_FLUSH_MEMBERS = 10_000
MIN_GRACE_MS = 10
MAX_GRACE_MS = 24 * 3600 * SECOND_MS
MIN_MAX_DELAY_MS = 10
MAX_MAX_DELAY_MS = 7 * 24 * 3600 * SECOND_MS
MAX_MAX_SIZE = 10_000
GROUP_KEY_RE = re.compile(r"[A-Za-z0-9_.:@/+=-]{1,256}")
# Hash fields of the settings key; a missing field takes its default.
GRACE_FIELD, MAX_DELAY_FIELD, MAX_SIZE_FIELD = "gp", "md", "ms"


@dataclass(frozen=True, slots=True)
class GroupSettings:
    """How a queue's groups are flushed: the first of quiet for ``grace_ms``, ``max_delay_ms``
    after the first join, or ``max_size`` members."""

    grace_ms: int = DEFAULT_GRACE_MS
    max_delay_ms: int = DEFAULT_MAX_DELAY_MS
    max_size: int = DEFAULT_MAX_SIZE


@dataclass(frozen=True, slots=True)
class SettingsUpdate:
    """New values for some settings: a name in ``reset`` returns to its default."""

    grace_ms: int | None = None
    max_delay_ms: int | None = None
    max_size: int | None = None
    reset: frozenset[str] = frozenset()

    def validate(self, field: str) -> None:
        """Raise InvalidField (named under ``field``) for a value out of bounds."""
        _bounded(f"{field}.grace_period", self.grace_ms, MIN_GRACE_MS, MAX_GRACE_MS, "ms")
        _bounded(f"{field}.max_delay", self.max_delay_ms, MIN_MAX_DELAY_MS, MAX_MAX_DELAY_MS,
                 "ms")
        _bounded(f"{field}.max_size", self.max_size, 1, MAX_MAX_SIZE, "")


def _bounded(field: str, value: int | None, low: int, high: int, unit: str) -> None:
    if value is not None and not low <= value <= high:
        raise InvalidField(field, f"must be between {low:,}{unit} and {high:,}{unit} "
                                  f"(got {value:,}{unit})")


def group_id(task_type: str, group: str) -> str:
    """The id of the group of ``(type, group key)`` within a queue, as used in key names and
    indexes: the type's length first, so that a ``:`` in type or key is never ambiguous."""
    return f"{len(task_type)}:{task_type}:{group}"


def parse_group_id(value: str) -> tuple[str, str]:
    """``(type, group key)`` of a :func:`group_id`."""
    length, _, rest = value.partition(":")
    size = int(length)
    return rest[:size], rest[size + 1:]


def check_group_key(field: str, value: str) -> str:
    if not GROUP_KEY_RE.fullmatch(value):
        raise InvalidField(field, f"invalid group key {value[:140]!r}: use 1-256 characters of "
                                  "[A-Za-z0-9_.:@/+=-]")
    return value


@dataclass(frozen=True, slots=True)
class GroupView:
    """One AGGREGATING group as ListGroups shows it."""

    queue: str
    type: str
    group: str
    size: int
    first_joined_ms: int
    last_joined_ms: int
    flush_at_ms: int


@dataclass(frozen=True, slots=True)
class Flushed:
    """A group turned into one PENDING task."""

    queue: str
    task_id: str
    members: int
    at_ms: int
