"""Plain values of the operator use cases (no gRPC, no Redis)."""

from __future__ import annotations

from dataclasses import dataclass, field

from leasq_broker.models import StoredTask


@dataclass(frozen=True, slots=True)
class TaskFilter:
    """Narrows a bulk operation; an unset criterion matches every task."""

    type: str = ""
    error_type: str = ""
    #: Only tasks enqueued at least this long ago (ms); None: any age.
    older_than_ms: int | None = None


@dataclass(frozen=True, slots=True)
class DayCount:
    """One UTC day (``YYYY-MM-DD``) of a queue."""

    date: str
    processed: int
    failed: int


@dataclass(frozen=True, slots=True)
class QueueHistory:
    """Daily counts, today first, and the totals since the queue was created."""

    days: list[DayCount]
    processed_total: int
    failed_total: int


@dataclass(frozen=True, slots=True)
class DailyCounts:
    """Processed and failed attempts per UTC day of many queues: ``dates`` today first, and per
    queue (in the order asked) one number per date."""

    dates: list[str]
    processed: list[list[int]]
    failed: list[list[int]]


@dataclass(frozen=True, slots=True)
class SearchCriteria:
    """What SearchTasks looks for: every set criterion must match."""

    id_prefix: str = ""
    type: str = ""
    payload_contains: bytes = b""
    error_type: str = ""

    def any(self) -> bool:
        return bool(self.id_prefix or self.type or self.payload_contains or self.error_type)


@dataclass(frozen=True, slots=True)
class SearchResult:
    """One page of matches, the token to go on ("" at the end) and how many were examined."""

    tasks: list[StoredTask] = field(default_factory=list)
    next_page_token: str = ""
    examined: int = 0


@dataclass(frozen=True, slots=True)
class KeyspaceEntry:
    """One logical database of ``INFO keyspace``."""

    db: str
    keys: int
    expires: int


@dataclass(frozen=True, slots=True)
class RedisState:
    """What ``INFO`` (and ``CONFIG GET appendfsync`` and ``save``) tell about the broker's
    Redis."""

    version: str
    mode: str
    used_memory_bytes: int
    max_memory_bytes: int
    connected_clients: int
    aof_enabled: bool
    aof_fsync: str
    uptime_s: int
    # The rest is shown by the dashboard's Redis screen (GetServerInfo carries the above).
    peak_memory_bytes: int = 0
    max_memory_policy: str = ""
    #: ``CONFIG GET save`` (e.g. ``3600 1 300 100``); "" when RDB snapshots are off or hidden.
    rdb_save: str = ""
    rdb_last_save_s: int = 0
    rdb_changes_since_save: int = 0
    role: str = ""
    connected_replicas: int = 0
    tcp_port: int = 0
    ops_per_second: int = 0
    total_commands: int = 0
    fragmentation_ratio: float = 0.0
    #: Per database (``db0``...): its key count and how many of them expire.
    keyspace: tuple[KeyspaceEntry, ...] = ()
    #: ``host:port`` of this node (a Redis Cluster's primaries only; "" otherwise).
    name: str = ""
    #: On a Redis Cluster: each primary's own state; the fields above then sum (memory,
    #: clients, commands, keys) or take the first primary's value (version, settings).
    nodes: tuple[RedisState, ...] = ()


@dataclass(frozen=True, slots=True)
class ServerState:
    """The broker's version, its process start (ms) and its Redis."""

    version: str
    started_at_ms: int
    redis: RedisState
