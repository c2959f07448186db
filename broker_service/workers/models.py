"""Workers as plain values: what a call tells about its worker, what the broker keeps."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Command(enum.Enum):
    """An operator's command for a worker, as stored (the value) in its registration."""

    NONE = ""
    QUIET = "quiet"
    STOP = "stop"


@dataclass(frozen=True, slots=True)
class WorkerMeta:
    """What a worker says about itself (every field optional: zero or empty when unsent)."""

    host: str = ""
    pid: int = 0
    concurrency: int = 0
    started_at_ms: int | None = None
    sdk: str = ""


@dataclass(frozen=True, slots=True)
class Sighting:
    """One Lease or Heartbeat call, as far as the registry cares: who called, with what meta,
    and (a Lease only) its queues and strict flag."""

    worker_id: str
    meta: WorkerMeta | None
    queues: tuple[tuple[str, int], ...] | None = None
    strict: bool = False


@dataclass(frozen=True, slots=True)
class HeldTask:
    """An ACTIVE task under a worker's id. The envelope is the stored task (the edge reads its
    type from it)."""

    queue: str
    task_id: str
    envelope: bytes
    leased_at_ms: int | None
    lease_expires_ms: int | None


@dataclass(frozen=True, slots=True)
class WorkerRecord:
    """A live worker: its latest meta, queues, times, command and the tasks it holds."""

    worker_id: str
    meta: WorkerMeta | None
    queues: list[tuple[str, int]]
    strict: bool
    first_seen_ms: int
    last_seen_ms: int
    command: Command
    tasks: list[HeldTask] = field(default_factory=list)
