"""From a schedule and a tick to the task a fire enqueues; checking a definition at upsert.

A definition is checked by building the task its next fire would enqueue and validating it
with the producer's rules, so a template that would fail at fire time fails at upsert instead,
with the field named under ``schedule.template``.
"""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime

from leasq_broker import validation as v
from leasq_broker.errors import InvalidField
from leasq_broker.models import NewTask, TaskRecord
from leasq_broker.producer import Producer
from leasq_broker.schedules.models import ScheduleDef
from leasq_broker.schedules.ticks import SpecError, Ticker, ticker

SCHEDULE_HEADER = "leasq-schedule"
TICK_HEADER = "leasq-schedule-tick"
MAX_NAME = 100
MAX_JITTER_MS = 3600 * 1000
MIN_WINDOW_MS = 1000
MAX_WINDOW_MS = 7 * v.DAY_MS
_jitter = random.Random()


def fired_task_id(name: str, tick_ms: int, *, manual: bool = False) -> str:
    """The id of the task fired for ``tick_ms``: the same on every replica, at every retry."""
    kind = ":manual" if manual else ""
    task_id = f"sch:{name}{kind}:{tick_ms}"
    if len(task_id) > 128:
        task_id = f"sch:{hashlib.sha256(name.encode()).hexdigest()[:24]}{kind}:{tick_ms}"
    return task_id


def fired_task(definition: ScheduleDef, tick_ms: int, *, manual: bool = False) -> NewTask:
    """The task a fire of ``tick_ms`` enqueues (jitter drawn here, once per fire)."""
    t = definition.template
    headers = dict(t.headers)
    headers[SCHEDULE_HEADER] = definition.name
    headers[TICK_HEADER] = datetime.fromtimestamp(tick_ms / 1000, UTC).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")
    process_at = None
    if definition.jitter_ms and not manual:
        process_at = tick_ms + _jitter.randint(0, definition.jitter_ms)
    return NewTask(
        type=t.type, payload=t.payload, headers=headers, queue=t.queue,
        task_id=fired_task_id(definition.name, tick_ms, manual=manual),
        max_retry=t.max_retry, timeout_ms=t.timeout_ms,
        deadline_ms=None if t.deadline_after_ms is None else tick_ms + t.deadline_after_ms,
        process_at_ms=process_at, unique_ttl_ms=t.unique_ttl_ms, unique_key=t.unique_key,
        retention_ms=t.retention_ms,
    )


def build_record(
    producer: Producer, definition: ScheduleDef, tick_ms: int, now: int, *, manual: bool = False
) -> TaskRecord:
    """The store record of a fire; raises the producer's error when the task is refused."""
    return producer.record(fired_task(definition, tick_ms, manual=manual), "schedule.template",
                           now)


def check(definition: ScheduleDef, producer: Producer, now: int) -> Ticker:
    """Validate a definition (errors name ``schedule.<field>``); its parsed spec."""
    if len(definition.name) > MAX_NAME:
        raise InvalidField("schedule.name", f"must be at most {MAX_NAME} characters")
    if not definition.name:
        _required("name")
    if not v.TASK_ID_RE.fullmatch(definition.name):
        raise InvalidField("schedule.name", f"invalid schedule name {definition.name[:140]!r}: "
                           f"use 1-{MAX_NAME} characters of [A-Za-z0-9_.:-]")
    if not definition.spec:
        _required("spec")
    try:
        parsed = ticker(definition.spec, definition.time_zone)
    except SpecError as exc:
        field = "schedule.time_zone" if "time zone" in str(exc) else "schedule.spec"
        raise InvalidField(field, str(exc)) from exc
    v.duration_ms("schedule.jitter", definition.jitter_ms, 0, MAX_JITTER_MS)
    v.duration_ms("schedule.catch_up_window", definition.catch_up_window_ms, MIN_WINDOW_MS,
                  MAX_WINDOW_MS)
    t = definition.template
    if t.deadline_after_ms is not None:
        v.duration_ms("schedule.template.deadline_after", t.deadline_after_ms, 1,
                      v.MAX_SCHEDULE_MS)
    build_record(producer, definition, parsed.next_after(now), now)
    return parsed


def _required(field: str) -> None:
    raise InvalidField(f"schedule.{field}", "is required")
