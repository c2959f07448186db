"""Periodic schedules as typed values, and their conversion to and from the contract.

::

    REPORT = Schedule("monthly-report", "0 9 1 * *", "report:monthly", {"month": "previous"},
                      time_zone="Europe/Berlin", queue="reports", catch_up="one")
    client.upsert_schedule(REPORT)

A :class:`Schedule` is what you define; a :class:`ScheduleInfo` is what the broker answers
with (the definition plus its next fire and last fire). Spans are seconds or ``timedelta``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import grpc

from leasq.v1 import schedule_service_pb2 as pb
from leasq_sdk.convert import Seconds, from_duration, from_timestamp, state_from_proto, to_duration
from leasq_sdk.errors import InvalidArgument
from leasq_sdk.models import TaskState
from leasq_sdk.options import encode_payload


class CatchUp(enum.StrEnum):
    """Missed ticks after downtime: drop them, fire once for all, or fire each (in a window)."""

    SKIP = "skip"
    ONE = "one"
    ALL = "all"


class Overlap(enum.StrEnum):
    """Fire regardless, or skip a tick while the previous fire's task is unfinished."""

    ALLOW = "allow"
    SKIP = "skip"


class FireStatus(enum.StrEnum):
    """What happened at a tick (``leasq.v1.FireStatus``)."""

    FIRED = "fired"
    SKIPPED_OVERLAP = "skipped_overlap"
    MISSED = "missed"
    MANUAL = "manual"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class Schedule:
    """A periodic schedule: when (``spec``) and what (the task fields).

    ``spec``: 5-field cron, 6-field cron with seconds first, ``@hourly``-style macros, or
    ``@every 30s``. The task fields mean what they mean in :meth:`Client.enqueue`;
    ``deadline_after`` sets each fired task's deadline to its tick plus this span.
    """

    name: str
    spec: str
    type: str
    payload: Any = b""
    queue: str = "default"
    time_zone: str = "UTC"
    headers: Mapping[str, str] = field(default_factory=dict)
    max_retry: int | None = None
    timeout: Seconds | None = None
    deadline_after: Seconds | None = None
    retention: Seconds | None = None
    unique: Seconds | None = None
    unique_key: str = ""
    jitter: Seconds | None = None
    catch_up: CatchUp | str = CatchUp.SKIP
    catch_up_window: Seconds | None = None
    overlap: Overlap | str = Overlap.ALLOW
    paused: bool = False


@dataclass(frozen=True, slots=True)
class ScheduleFire:
    """One entry of a schedule's fire history."""

    tick: datetime
    fired_at: datetime
    status: FireStatus
    task_id: str
    queue: str
    task_state: TaskState | None
    missed_count: int
    error: str


@dataclass(frozen=True, slots=True)
class ScheduleInfo:
    """A stored schedule: the definition, its next tick (None while paused), its last fire."""

    schedule: Schedule
    next_fire_at: datetime | None
    created_at: datetime
    updated_at: datetime
    last_fire: ScheduleFire | None


def to_proto(schedule: Schedule) -> pb.Schedule:
    """The contract's Schedule for a definition; payloads are encoded as in ``enqueue``."""
    payload, headers = encode_payload(schedule.payload, schedule.headers)
    template = pb.TaskTemplate(type=schedule.type, payload=payload, headers=dict(headers or {}),
                               queue=schedule.queue, unique_key=schedule.unique_key)
    if schedule.max_retry is not None:
        template.max_retry = schedule.max_retry
    for name, span in (("timeout", schedule.timeout), ("deadline_after", schedule.deadline_after),
                       ("retention", schedule.retention), ("unique_ttl", schedule.unique)):
        if span is not None:
            getattr(template, name).CopyFrom(to_duration(span))
    message = pb.Schedule(
        name=schedule.name, spec=schedule.spec, time_zone=schedule.time_zone, template=template,
        catch_up=_enum_number(pb.CatchUpPolicy, "CATCH_UP_POLICY_", schedule.catch_up,
                              "catch_up", CatchUp),
        overlap=_enum_number(pb.OverlapPolicy, "OVERLAP_POLICY_", schedule.overlap, "overlap",
                             Overlap),
        paused=schedule.paused,
    )
    if schedule.jitter is not None:
        message.jitter.CopyFrom(to_duration(schedule.jitter))
    if schedule.catch_up_window is not None:
        message.catch_up_window.CopyFrom(to_duration(schedule.catch_up_window))
    return message


def _enum_number(kind: Any, prefix: str, value: str, field_name: str,
                 choices: type[enum.StrEnum]) -> Any:
    try:
        return kind.Value(prefix + choices(str(value).lower()).name)
    except ValueError:
        allowed = ", ".join(c.value for c in choices)
        raise InvalidArgument(f"schedule.{field_name}: must be one of {allowed}, got {value!r}",
                              code=grpc.StatusCode.INVALID_ARGUMENT,
                              field=f"schedule.{field_name}") from None


def from_proto(message: pb.Schedule) -> ScheduleInfo:
    t = message.template
    spans = {name: from_duration(getattr(t, name)) if t.HasField(name) else None
             for name in ("timeout", "deadline_after", "retention", "unique_ttl")}
    schedule = Schedule(
        name=message.name, spec=message.spec, type=t.type, payload=t.payload, queue=t.queue,
        time_zone=message.time_zone, headers=dict(t.headers),
        max_retry=t.max_retry if t.HasField("max_retry") else None,
        timeout=spans["timeout"], deadline_after=spans["deadline_after"],
        retention=spans["retention"], unique=spans["unique_ttl"], unique_key=t.unique_key,
        jitter=from_duration(message.jitter) if message.HasField("jitter") else None,
        catch_up=CatchUp(pb.CatchUpPolicy.Name(message.catch_up)
                         .removeprefix("CATCH_UP_POLICY_").lower()),
        catch_up_window=from_duration(message.catch_up_window),
        overlap=Overlap(pb.OverlapPolicy.Name(message.overlap)
                        .removeprefix("OVERLAP_POLICY_").lower()),
        paused=message.paused,
    )
    return ScheduleInfo(
        schedule=schedule,
        next_fire_at=from_timestamp(message.next_fire_at)
        if message.HasField("next_fire_at") else None,
        created_at=from_timestamp(message.created_at),
        updated_at=from_timestamp(message.updated_at),
        last_fire=fire(message.last_fire) if message.HasField("last_fire") else None,
    )


def fire(message: pb.ScheduleFire) -> ScheduleFire:
    return ScheduleFire(
        tick=from_timestamp(message.tick), fired_at=from_timestamp(message.fired_at),
        status=FireStatus(pb.FireStatus.Name(message.status).removeprefix("FIRE_STATUS_")
                          .lower()),
        task_id=message.task_id, queue=message.queue,
        task_state=state_from_proto(message.task_state) if message.task_state else None,
        missed_count=message.missed_count, error=message.error,
    )
