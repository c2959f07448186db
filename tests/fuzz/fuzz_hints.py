"""Mostly valid field values, so that fuzzed requests pass validation and reach deep paths.

Keyed by field name (``queue`` hints every field called ``queue``, in any message). Queue names
come from :data:`QUEUES` only (and random text): the sentinel queue of the fuzz module is never
among them, so no fuzzed call can touch its tasks.
"""

from __future__ import annotations

import time
from typing import Any

from google.protobuf import duration_pb2, timestamp_pb2
from hypothesis import strategies as st

QUEUES = ("fz-a", "fz-b", "default", "fz:c.d_e-f")
TYPES = ("fz:job", "email:welcome", "report:")
TASK_IDS = ("fz-1", "fz-2", "fz-3", "sch:fz-s1:1")
SCHEDULE_NAMES = ("fz-s1", "fz-s2")
SPECS = ("@every 1s", "@every 5m", "*/10 * * * * *", "0 9 1 * *", "@daily", "0 2 * * *",
         "@every 0s", "61 * * * *", "@every 1h30m")  # fmt: skip
TIME_ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Mars/Phobos", "")
# Far apart from anything above, and from random text: tasks the fuzzer must never reach.
SENTINEL_QUEUE = "sentinel-q7c1e5d93"


def _duration(low: float, high: float) -> st.SearchStrategy[duration_pb2.Duration]:
    def build(seconds: float) -> duration_pb2.Duration:
        whole = int(seconds)
        return duration_pb2.Duration(seconds=whole, nanos=int((seconds - whole) * 1e9))

    return st.floats(low, high, allow_nan=False).map(build)


def _near_now() -> st.SearchStrategy[timestamp_pb2.Timestamp]:
    """Instants from a minute ago to a day ahead (of when the value is drawn)."""
    return st.integers(-60, 86_400).map(
        lambda offset: timestamp_pb2.Timestamp(seconds=int(time.time()) + offset)
    )


HINTS: dict[str, st.SearchStrategy[Any]] = {
    "queue": st.sampled_from(QUEUES),
    "type": st.sampled_from(TYPES),
    "task_id": st.sampled_from(TASK_IDS),
    "worker_id": st.sampled_from(("w-1", "w-2")),
    "name": st.sampled_from(SCHEDULE_NAMES),
    "spec": st.sampled_from(SPECS),
    "time_zone": st.sampled_from(TIME_ZONES),
    "unique_key": st.sampled_from(("u-1", "u-2")),
    "group": st.sampled_from(("g-1", "")),
    "max_tasks": st.integers(0, 5),
    "max_retry": st.integers(0, 3),
    "weight": st.integers(0, 10),
    "page_size": st.integers(0, 50),
    "limit": st.integers(0, 60),
    "wait": st.one_of(st.just(duration_pb2.Duration()), _duration(0, 0.3)),
    "lease_duration": _duration(1, 3),
    "retry_after": _duration(0, 5),
    "timeout": _duration(0.001, 3600),
    "process_in": _duration(0, 5),
    "retention": _duration(0, 600),
    "unique_ttl": _duration(0.5, 60),
    "jitter": _duration(0, 2),
    "deadline_after": _duration(1, 3600),
    "catch_up_window": _duration(1, 7200),
    "deadline": _near_now(),
    "process_at": _near_now(),
}
