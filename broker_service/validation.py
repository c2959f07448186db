"""Input rules of every call, as small functions that raise domain errors naming the field.

The rules are the ones the contract documents; keeping them in one module keeps the proto
comments and the broker's behaviour easy to compare.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from leasq_broker.errors import BatchTooLarge, HeadersTooLarge, InvalidField, PayloadTooLarge

QUEUE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
TASK_ID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
PRINTABLE_RE = re.compile(r"[\x20-\x7e]+")

SECOND_MS = 1000
DAY_MS = 24 * 3600 * SECOND_MS
YEAR_MS = 365 * DAY_MS
MAX_RETRY = 10_000
MAX_TIMEOUT_MS = 7 * DAY_MS
MAX_SCHEDULE_MS = 10 * YEAR_MS
MAX_UNIQUE_TTL_MS = 30 * DAY_MS
MAX_RETENTION_MS = 90 * DAY_MS
MAX_HEADERS = 64
MAX_HEADER_BYTES = 16 * 1024
MAX_SHORT_TEXT = 256
MAX_BATCH = 1000
MAX_LEASE_QUEUES = 100
MAX_WEIGHT = 1000
MIN_LEASE_MS = SECOND_MS
MAX_LEASE_MS = 12 * 3600 * SECOND_MS
DEFAULT_LEASE_MS = 15 * SECOND_MS
MAX_WAIT_MS = 60 * SECOND_MS
MAX_HEARTBEAT_LEASES = 10_000
MAX_ERROR_TEXT = 16 * 1024
# The ranges of google.protobuf.Timestamp (0001-01-01T00:00:00Z..9999-12-31T23:59:59Z) and
# google.protobuf.Duration (+-10,000 years); nanos within one second.
MIN_TIMESTAMP_S = -62_135_596_800
MAX_TIMESTAMP_S = 253_402_300_799
MAX_DURATION_S = 315_576_000_000
MAX_NANOS = 999_999_999


def queue_name(field: str, value: str) -> str:
    """A queue name; braces and other characters would break hash tags or keys."""
    if not QUEUE_RE.fullmatch(value):
        raise InvalidField(
            field,
            f"invalid queue name {value[:140]!r}: use 1-128 characters of [A-Za-z0-9_.:-] "
            "starting with a letter or digit",
        )
    return value


def concurrency_key(field: str, value: str) -> str:
    """A concurrency key: 1-256 printable ASCII characters. Never a control character: the
    key's PENDING tasks are members ``key \\0 <sequence> id`` of one sorted set, read by a lex
    range that ends at ``key \\1`` (see ``lua/_flow.lua``), and the enqueue script's per-task
    argument separates its fields by tabs."""
    if len(value) > MAX_SHORT_TEXT or not PRINTABLE_RE.fullmatch(value):
        raise InvalidField(field, f"invalid concurrency key {value[:140]!r} ({len(value):,} "
                                  f"characters): use 1-{MAX_SHORT_TEXT} printable ASCII "
                                  "characters")
    return value


def task_id(field: str, value: str) -> str:
    if not TASK_ID_RE.fullmatch(value):
        raise InvalidField(
            field, f"invalid task id {value[:140]!r}: use 1-128 characters of [A-Za-z0-9_.:-]"
        )
    return value


def printable(field: str, value: str, max_len: int = MAX_SHORT_TEXT, *, required: bool) -> str:
    """Printable ASCII text of at most ``max_len`` characters."""
    if not value:
        if required:
            raise InvalidField(field, "is required")
        return value
    if len(value) > max_len or not PRINTABLE_RE.fullmatch(value):
        raise InvalidField(field, f"must be 1-{max_len} printable ASCII characters")
    return value


def short_text(field: str, value: str, max_len: int = MAX_SHORT_TEXT) -> str:
    if len(value) > max_len:
        raise InvalidField(field, f"must be at most {max_len} characters (got {len(value)})")
    return value


def in_range(field: str, value: int, low: int, high: int, unit: str = "") -> int:
    if not low <= value <= high:
        raise InvalidField(field, f"must be between {low} and {high}{unit} (got {value}{unit})")
    return value


def duration_ms(field: str, value: int | None, low: int, high: int) -> int | None:
    """A duration in ms within [low, high]; None stays None (use the default)."""
    if value is None:
        return None
    if value < low or value > high:
        raise InvalidField(
            field, f"must be between {_human(low)} and {_human(high)} (got {_human(value)})"
        )
    return value


def timestamp(field: str, seconds: int, nanos: int) -> int:
    """A Timestamp's value in ms; refused outside the range google.protobuf defines."""
    if not (MIN_TIMESTAMP_S <= seconds <= MAX_TIMESTAMP_S and 0 <= nanos <= MAX_NANOS):
        raise InvalidField(
            field, f"is not a valid Timestamp (seconds={seconds}, nanos={nanos}): it must lie in "
            "0001-01-01T00:00:00Z..9999-12-31T23:59:59Z with nanos in 0..999,999,999",
        )
    return seconds * SECOND_MS + nanos // 1_000_000


def duration(field: str, seconds: int, nanos: int) -> int:
    """A Duration's value in ms (rounded toward minus infinity); refused outside the range
    google.protobuf defines, or when seconds and nanos differ in sign."""
    if (
        not -MAX_DURATION_S <= seconds <= MAX_DURATION_S
        or not -MAX_NANOS <= nanos <= MAX_NANOS
        or (seconds > 0 > nanos)
        or (seconds < 0 < nanos)
    ):
        raise InvalidField(
            field, f"is not a valid Duration (seconds={seconds}, nanos={nanos}): seconds must "
            f"lie within +-{MAX_DURATION_S:,}, nanos within +-{MAX_NANOS:,} with the sign of "
            "seconds",
        )
    return seconds * SECOND_MS + nanos // 1_000_000


def payload(field: str, value: bytes, limit: int) -> bytes:
    if len(value) > limit:
        raise PayloadTooLarge(
            field, f"is {len(value)} bytes; the broker accepts at most {limit} bytes"
        )
    return value


def headers(field: str, value: Mapping[str, str]) -> Mapping[str, str]:
    if len(value) > MAX_HEADERS:
        raise HeadersTooLarge(field, f"has {len(value)} entries; at most {MAX_HEADERS} allowed")
    size = sum(len(k.encode()) + len(v.encode()) for k, v in value.items())
    if size > MAX_HEADER_BYTES:
        raise HeadersTooLarge(
            field, f"hold {size} bytes of keys and values; at most {MAX_HEADER_BYTES} allowed"
        )
    return value


def batch_size(field: str, count: int, high: int = MAX_BATCH) -> int:
    if count == 0:
        raise InvalidField(field, "must hold at least one item")
    if count > high:
        raise BatchTooLarge(field, f"holds {count} items; at most {high} per call")
    return count


def _human(ms: int) -> str:
    if ms % DAY_MS == 0 and ms >= DAY_MS:
        return f"{ms // DAY_MS}d"
    if ms % SECOND_MS == 0:
        return f"{ms // SECOND_MS}s"
    return f"{ms}ms"
