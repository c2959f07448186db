"""Between ScheduleService messages and the schedules capability's domain values."""

from __future__ import annotations

from google.protobuf.duration_pb2 import Duration

from leasq.v1 import schedule_service_pb2 as pb
from leasq_broker.edge.converters import STATE_VALUES, duration_ms, set_ms
from leasq_broker.errors import InvalidField
from leasq_broker.schedules.models import (
    CatchUp,
    Fire,
    Overlap,
    ScheduleDef,
    ScheduleView,
    Template,
)

DEFAULT_WINDOW_MS = 3600 * 1000
_TEMPLATE = "schedule.template"


def _optional_ms(message: pb.TaskTemplate | pb.Schedule, name: str, field: str) -> int | None:
    if not message.HasField(name):  # type: ignore[arg-type]
        return None
    value: Duration = getattr(message, name)
    return duration_ms(value, f"{field}.{name}")


def schedule_def(message: pb.Schedule) -> ScheduleDef:
    """Read a Schedule (output-only fields ignored); the use case validates the values."""
    if not message.HasField("template"):
        raise InvalidField("schedule.template", "is required")
    t = message.template
    if message.catch_up not in (0, *CatchUp):
        raise InvalidField("schedule.catch_up", f"unknown CatchUpPolicy {message.catch_up}")
    if message.overlap not in (0, *Overlap):
        raise InvalidField("schedule.overlap", f"unknown OverlapPolicy {message.overlap}")
    template = Template(
        type=t.type, payload=t.payload, headers=dict(t.headers), queue=t.queue,
        max_retry=t.max_retry if t.HasField("max_retry") else None,
        timeout_ms=_optional_ms(t, "timeout", _TEMPLATE),
        deadline_after_ms=_optional_ms(t, "deadline_after", _TEMPLATE),
        retention_ms=_optional_ms(t, "retention", _TEMPLATE),
        unique_ttl_ms=_optional_ms(t, "unique_ttl", _TEMPLATE),
        unique_key=t.unique_key,
    )
    return ScheduleDef(
        name=message.name, spec=message.spec, template=template, time_zone=message.time_zone,
        jitter_ms=_optional_ms(message, "jitter", "schedule") or 0,
        catch_up=CatchUp(message.catch_up or CatchUp.SKIP),
        catch_up_window_ms=(_optional_ms(message, "catch_up_window", "schedule")
                            or DEFAULT_WINDOW_MS),
        overlap=Overlap(message.overlap or Overlap.ALLOW), paused=message.paused,
    )


def schedule(view: ScheduleView) -> pb.Schedule:
    d, t = view.definition, view.definition.template
    template = pb.TaskTemplate(type=t.type, payload=t.payload, headers=t.headers, queue=t.queue,
                               unique_key=t.unique_key)
    if t.max_retry is not None:
        template.max_retry = t.max_retry
    for name, ms in (("timeout", t.timeout_ms), ("deadline_after", t.deadline_after_ms),
                     ("retention", t.retention_ms), ("unique_ttl", t.unique_ttl_ms)):
        if ms is not None:
            set_ms(getattr(template, name), ms)
    out = pb.Schedule(name=d.name, spec=d.spec, time_zone=d.time_zone, template=template,
                      catch_up=int(d.catch_up), overlap=int(d.overlap),  # type: ignore[arg-type]
                      paused=d.paused)
    if d.jitter_ms:
        set_ms(out.jitter, d.jitter_ms)
    set_ms(out.catch_up_window, d.catch_up_window_ms)
    set_ms(out.created_at, d.created_ms)
    set_ms(out.updated_at, d.updated_ms)
    if view.next_fire_ms is not None:
        set_ms(out.next_fire_at, view.next_fire_ms)
    if view.last_fire is not None:
        out.last_fire.CopyFrom(fire(view.last_fire))
    return out


def fire(entry: Fire) -> pb.ScheduleFire:
    out = pb.ScheduleFire(
        status=int(entry.status), task_id=entry.task_id,  # type: ignore[arg-type]
        queue=entry.queue, missed_count=entry.missed_count, error=entry.error,
        task_state=STATE_VALUES.get(entry.task_state, 0),
    )
    set_ms(out.tick, entry.tick_ms)
    set_ms(out.fired_at, entry.fired_at_ms)
    return out

