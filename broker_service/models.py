"""Plain values that cross between the domain services and the Redis store.

The envelope is the task's immutable part (id, queue, type, payload, headers, limits) encoded
once at enqueue by the edge; the store keeps it as opaque bytes and hands it back on lease, so
the hot path never re-encodes a payload.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum


@dataclass(slots=True)
class NewTask:
    """A task as a producer asked for it, before validation. Durations and instants in ms."""

    type: str
    payload: bytes
    headers: Mapping[str, str]
    queue: str = ""
    task_id: str = ""
    max_retry: int | None = None
    timeout_ms: int | None = None
    deadline_ms: int | None = None
    process_at_ms: int | None = None
    process_in_ms: int | None = None
    unique_ttl_ms: int | None = None
    unique_key: str = ""
    retention_ms: int | None = None
    group: str = ""
    concurrency_key: str = ""


# Not frozen: a frozen dataclass sets each field through object.__setattr__, and one of these
# is made per task of every batch. Nothing changes a record once it is built.
@dataclass(slots=True)
class TaskRecord:
    """A validated task ready for the store."""

    id: str
    # Empty for a grouped task: it waits as its GroupMember (``member``).
    envelope: bytes
    process_at_ms: int
    max_retry: int
    # The unique lock's digest within the queue's lock hash (Keys.unique_locks); "" = none.
    unique_lock: str
    unique_ttl_ms: int
    retention_ms: int
    group: str
    # Absolute deadline (ms); 0 = none. Past it the task is archived instead of leased.
    deadline_ms: int = 0
    # A grouped task (``group`` set): its group's id within the queue, the task as a
    # GroupMember, and the envelope of the task its group flushes into (without group, id,
    # enqueued_at and members).
    group_id: str = ""
    member: bytes = b""
    base: bytes = b""
    # Fairness within the queue (TaskSpec.concurrency_key); empty: none.
    concurrency_key: str = ""

    def meta(self) -> str:
        """The per-task argument of ``enqueue.lua`` and ``schedule_fire.lua``."""
        meta = (f"{self.id}\t{self.process_at_ms}\t{self.max_retry}\t{self.unique_ttl_ms}"
                f"\t{self.retention_ms}\t{self.unique_lock}\t{self.deadline_ms}\t{self.group}")
        return f"{meta}\t{self.concurrency_key}" if self.concurrency_key else meta


class EnqueueStatus(IntEnum):
    """Reply codes of ``enqueue.lua``."""

    ENQUEUED = 0
    TASK_ID_CONFLICT = 1
    DUPLICATE_TASK = 2
    # Joined its group (``group_join.lua``): AGGREGATING until the group is flushed.
    AGGREGATED = 3


@dataclass(slots=True)  # one per task of every batch: not frozen, see TaskRecord
class Enqueued:
    """A task the store accepted."""

    id: str
    queue: str
    scheduled: bool
    next_process_at_ms: int
    aggregating: bool = False


@dataclass(frozen=True, slots=True)
class LeaseGrant:
    """One task leased by the store."""

    queue: str
    id: str
    envelope: bytes
    retried: int
    lease_lost_count: int
    lease_token: str
    leased_at_ms: int
    lease_expires_ms: int


@dataclass(frozen=True, slots=True)
class LeaseAsk:
    """What a worker asked Lease for, validated."""

    worker_id: str
    queues: list[tuple[str, int]]
    strict: bool
    max_tasks: int
    lease_ms: int
    wait_ms: int
    # Queue patterns: (position in the request's list, pattern, weight); ``queues`` holds the
    # named queues, in order, at the other positions.
    patterns: tuple[tuple[int, str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class LeaseRef:
    """A lease presented back by a worker."""

    queue: str
    task_id: str
    token: str


class NackAction(IntEnum):
    """Mirror of the contract's NackAction (numbers match)."""

    RETRY = 1
    ARCHIVE = 2
    REQUEUE = 3
    RELEASE = 4


@dataclass(frozen=True, slots=True)
class Settlement:
    """One Ack (action None) or Nack item."""

    lease: LeaseRef
    action: NackAction | None = None
    result: bytes = b""
    error: str = ""
    error_type: str = ""
    retry_after_ms: int | None = None


class SettleStatus(IntEnum):
    """Per-item outcome of a settlement."""

    SETTLED = 0
    LEASE_LOST = 1
    NOT_FOUND = 2
    # This token settled the task in an earlier call (its answer was lost): nothing changed.
    ALREADY_SETTLED = 3


@dataclass(frozen=True, slots=True)
class SettleOutcome:
    """What happened to one settlement item."""

    status: SettleStatus
    next_process_at_ms: int | None = None


class HeartbeatStatus(IntEnum):
    """Mirror of the contract's LeaseStatus."""

    EXTENDED = 1
    LOST = 2
    CANCEL_REQUESTED = 3


@dataclass(frozen=True, slots=True)
class HeartbeatOutcome:
    """The fate of one lease in a heartbeat."""

    status: HeartbeatStatus
    expires_ms: int | None


@dataclass(slots=True)
class StoredTask:
    """Everything Redis holds about one task, for the Inspect calls."""

    queue: str
    id: str
    envelope: bytes
    state: str
    fields: dict[str, str] = field(default_factory=dict)
    result: bytes = b""


@dataclass(frozen=True, slots=True)
class QueueCounts:
    """Counts and counters of one queue."""

    queue: str
    paused: bool
    pending: int
    scheduled: int
    active: int
    retry: int
    archived: int
    completed: int
    processed_today: int
    failed_today: int
    processed_total: int
    failed_total: int
    oldest_pending_ms: int | None
    aggregating: int = 0
    #: Approximate Redis memory of the queue (sampled); 0 when not measured.
    memory_bytes: int = 0
