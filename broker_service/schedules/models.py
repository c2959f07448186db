"""Plain values of the schedules capability: a definition, its stored form, its fires.

A definition is stored as JSON (payload in base64) in one hash of all definitions; what changes
at every fire (the next tick, the last fired task, the history) lives beside the template's
queue, so that a fire is one script on one Cluster slot.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any


class CatchUp(IntEnum):
    """Values of ``leasq.v1.CatchUpPolicy``."""

    SKIP = 1
    ONE = 2
    ALL = 3


class Overlap(IntEnum):
    """Values of ``leasq.v1.OverlapPolicy``."""

    ALLOW = 1
    SKIP = 2


class FireStatus(IntEnum):
    """Values of ``leasq.v1.FireStatus``; also the reply codes of ``schedule_fire.lua``."""

    FIRED = 1
    SKIPPED_OVERLAP = 2
    MISSED = 3
    MANUAL = 4
    REFUSED = 5


@dataclass(slots=True)
class Template:
    """The task a fire enqueues; durations in ms, None for "the broker's default"."""

    type: str
    payload: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    queue: str = "default"
    max_retry: int | None = None
    timeout_ms: int | None = None
    deadline_after_ms: int | None = None
    retention_ms: int | None = None
    unique_ttl_ms: int | None = None
    unique_key: str = ""


@dataclass(slots=True)
class ScheduleDef:
    """A schedule as an operator defines it (validated), plus its bookkeeping instants."""

    name: str
    spec: str
    template: Template
    time_zone: str = "UTC"
    jitter_ms: int = 0
    catch_up: CatchUp = CatchUp.SKIP
    catch_up_window_ms: int = 3600 * 1000
    overlap: Overlap = Overlap.ALLOW
    paused: bool = False
    created_ms: int = 0
    updated_ms: int = 0

    def timing(self) -> tuple[str, str, str]:
        """What decides the ticks and where they fire: an upsert keeps the next tick while
        this is unchanged."""
        return (self.spec, self.time_zone, self.template.queue)

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "name": self.name, "spec": self.spec, "tz": self.time_zone,
            "jitter": self.jitter_ms, "catch_up": int(self.catch_up),
            "window": self.catch_up_window_ms, "overlap": int(self.overlap),
            "paused": self.paused, "created": self.created_ms, "updated": self.updated_ms,
            "template": _template_json(self.template),
        }
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: bytes | str) -> ScheduleDef:
        data = json.loads(text)
        t = data["template"]
        template = Template(
            type=t["type"], payload=base64.b64decode(t["payload"]), headers=t["headers"],
            queue=t["queue"], max_retry=t["max_retry"], timeout_ms=t["timeout"],
            deadline_after_ms=t["deadline_after"], retention_ms=t["retention"],
            unique_ttl_ms=t["unique_ttl"], unique_key=t["unique_key"],
        )
        return cls(
            name=data["name"], spec=data["spec"], template=template, time_zone=data["tz"],
            jitter_ms=data["jitter"], catch_up=CatchUp(data["catch_up"]),
            catch_up_window_ms=data["window"], overlap=Overlap(data["overlap"]),
            paused=data["paused"], created_ms=data["created"], updated_ms=data["updated"],
        )


def _template_json(t: Template) -> dict[str, Any]:
    return {
        "type": t.type, "payload": base64.b64encode(t.payload).decode(), "headers": t.headers,
        "queue": t.queue, "max_retry": t.max_retry, "timeout": t.timeout_ms,
        "deadline_after": t.deadline_after_ms, "retention": t.retention_ms,
        "unique_ttl": t.unique_ttl_ms, "unique_key": t.unique_key,
    }


@dataclass(frozen=True, slots=True)
class Fire:
    """One entry of a schedule's fire history (as ``schedule_fire.lua`` records it)."""

    status: FireStatus
    tick_ms: int
    fired_at_ms: int
    task_id: str = ""
    queue: str = ""
    missed_count: int = 0
    error: str = ""
    # The fired task's state name now ("" when it no longer exists); filled on reads.
    task_state: str = ""

    @classmethod
    def from_json(cls, text: bytes | str) -> Fire:
        data = json.loads(text)
        return cls(
            status=FireStatus(int(data["s"])), tick_ms=int(data["t"]),
            fired_at_ms=int(data["at"]), task_id=data.get("id", ""), queue=data.get("q", ""),
            missed_count=int(data.get("n", 0)), error=data.get("e", ""),
        )


@dataclass(frozen=True, slots=True)
class ScheduleView:
    """A definition with what the store knows of it now."""

    definition: ScheduleDef
    next_fire_ms: int | None
    last_fire: Fire | None


@dataclass(frozen=True, slots=True)
class FirePlan:
    """What one scheduler pass does for one due schedule (see :mod:`.planner`).

    ``expected_next`` guards the transition: the store applies the plan only while the
    schedule's next tick is still that value, which is what makes a tick fire once across
    replicas. ``fire_tick`` is None when nothing fires (missed ticks are only recorded).
    """

    expected_next: int
    new_next: int
    fire_tick: int | None
    missed_from: int | None = None
    missed_count: int = 0
