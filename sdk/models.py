"""Plain values the SDK hands back: callers never see protobuf messages.

Every type here is a frozen dataclass (or a ``str`` enum), so results can be compared, hashed
where their fields allow it, logged and pickled without touching generated code.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any


class TaskState(enum.StrEnum):
    """Lifecycle state of a task; the value is the lower-case name, e.g. ``"pending"``.

    ``UNSPECIFIED`` only appears if the broker sends a state this SDK does not know.
    """

    UNSPECIFIED = "unspecified"
    PENDING = "pending"
    SCHEDULED = "scheduled"
    ACTIVE = "active"
    RETRY = "retry"
    ARCHIVED = "archived"
    COMPLETED = "completed"
    AGGREGATING = "aggregating"


@dataclass(frozen=True, slots=True)
class EnqueuedTask:
    """What the broker says about a task it accepted."""

    id: str
    queue: str
    #: ``PENDING``, ``SCHEDULED`` when the task was enqueued to run later, or ``AGGREGATING``
    #: when it waits in a group.
    state: TaskState
    #: When the task becomes leasable (UTC, timezone-aware).
    next_process_at: datetime


@dataclass(frozen=True, slots=True)
class GroupMember:
    """One task of an aggregated group, as its producer enqueued it (``leasq.v1.GroupMember``)."""

    id: str
    payload: bytes
    headers: dict[str, str]
    #: When the member was enqueued (UTC); None if the broker sent no time.
    enqueued_at: datetime | None

    def json(self) -> Any:
        """The payload parsed as JSON (None for an empty payload)."""
        return json.loads(self.payload) if self.payload else None


@dataclass(frozen=True, slots=True)
class TaskInfo:
    """Everything the broker records about one task (see ``leasq.v1.TaskInfo``).

    Instants are timezone-aware UTC datetimes; optional ones are ``None`` when unset.
    """

    id: str
    queue: str
    type: str
    payload: bytes
    headers: dict[str, str]
    state: TaskState
    max_retry: int
    retried: int
    lease_lost_count: int
    last_error: str
    last_error_type: str
    last_failed_at: datetime | None
    enqueued_at: datetime | None
    next_process_at: datetime | None
    completed_at: datetime | None
    result: bytes
    timeout: timedelta | None
    deadline: datetime | None
    unique_ttl: timedelta | None
    retention: timedelta | None
    group: str
    worker_id: str
    lease_expires_at: datetime | None
    archived_at: datetime | None
    expires_at: datetime | None
    cancel_requested: bool
    #: For a task made by aggregation: its members in the order they joined; else empty.
    members: tuple[GroupMember, ...] = ()
    #: TaskSpec.concurrency_key ("" none).
    concurrency_key: str = ""
    #: Why the task is not running (get_task of a PENDING, SCHEDULED, RETRY or AGGREGATING
    #: task); None otherwise.
    blocked: TaskBlock | None = None


@dataclass(frozen=True, slots=True)
class TaskBlock:
    """What keeps a task from running (see ``leasq.v1.TaskBlock``)."""

    #: The BlockReason without its prefix, lower case: "ready", "queue_paused",
    #: "rate_limited", "max_active", "key_limit", "scheduled", "retry_wait", "aggregating",
    #: "no_worker".
    reason: str
    #: The same in words.
    message: str
    #: When the obstacle ends, when known.
    until: datetime | None = None
    #: max_active and key_limit: tasks ACTIVE now, and the limit.
    active: int = 0
    limit: int = 0
    #: The latest Lease that served the task's queue (None: none known).
    last_lease_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class QueueInfo:
    """A queue's name and whether leasing from it is paused."""

    queue: str
    paused: bool
    #: The queue's stats when listed with ``include_stats=True`` (``memory_bytes`` 0), else
    #: None.
    stats: QueueStats | None = None


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Counts per state and processing totals of one queue."""

    queue: str
    paused: bool
    pending: int
    scheduled: int
    active: int
    retry: int
    archived: int
    completed: int
    aggregating: int
    processed_today: int
    failed_today: int
    processed_total: int
    failed_total: int
    #: How long the next pending task has waited since it became pending (enqueued, due,
    #: retried or put back after a lost lease); zero when none is pending.
    latency: timedelta
    #: Approximate Redis memory of the queue's keys and tasks (sampled), in bytes; filled by
    #: :meth:`Client.queue_stats` only (0 in listings).
    memory_bytes: int = 0


@dataclass(frozen=True, slots=True)
class TaskPage:
    """One page of :meth:`Client.list_tasks`."""

    tasks: list[TaskInfo] = field(default_factory=list)
    #: Pass to the next ``list_tasks`` call; empty on the last page.
    next_page_token: str = ""
    #: Tasks in the listed state right now (pages may shift while tasks move).
    total_size: int = 0
