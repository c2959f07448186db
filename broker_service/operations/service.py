"""The operations behind InspectService's bulk, history, search and queue calls: input rules
here, the Redis work in the modules beside (history, bulk, search, deletion, server_info).
``bulk_chunk`` and ``search_budget`` exist so that in-process tests can make chunk and page
boundaries cheap to reach; the broker uses the defaults."""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis

from leasq_broker import validation as v
from leasq_broker.clock import Clock
from leasq_broker.errors import InvalidField
from leasq_broker.keys import Keys
from leasq_broker.operations.bulk import ALLOWED_STATES, CHUNK, BulkMover, BulkOperation
from leasq_broker.operations.cursor import Cursor
from leasq_broker.operations.deletion import QueueDeleter
from leasq_broker.operations.history import read_daily, read_history
from leasq_broker.operations.models import (
    DailyCounts,
    QueueHistory,
    SearchCriteria,
    SearchResult,
    ServerState,
    TaskFilter,
)
from leasq_broker.operations.search import EXAMINE_BUDGET, Searcher
from leasq_broker.operations.server_info import read_server_state
from leasq_broker.reader import TaskReader
from leasq_broker.scripts import Scripts
from leasq_broker.store import TaskStore

DEFAULT_HISTORY_DAYS = 7
MAX_HISTORY_DAYS = 90
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_NEEDLE_BYTES = 1024
MAX_OLDER_THAN_MS = 3650 * v.DAY_MS
_SEARCHABLE = ("pending", "scheduled", "active", "retry", "archived", "completed")


class Operations:
    """History, bulk run/archive/delete, search, queue deletion, server info."""

    def __init__(self, redis: Redis, scripts: Scripts, keys: Keys, store: TaskStore,
                 reader: TaskReader, clock: Clock, *, bulk_chunk: int | None = None,
                 search_budget: int = EXAMINE_BUDGET) -> None:
        self._redis = redis
        self._scripts = scripts
        self._keys = keys
        self._store = store
        self._reader = reader
        self._clock = clock
        self._bulk = BulkMover(scripts, keys, bulk_chunk or CHUNK)
        self._searcher = Searcher(scripts, keys, reader, search_budget)
        self._deleter = QueueDeleter(redis, scripts, keys, reader)

    async def history(self, queue: str, days: int) -> QueueHistory:
        """The last ``days`` UTC days (0: 7) of the queue, today first."""
        v.queue_name("queue", queue)
        days = days or DEFAULT_HISTORY_DAYS
        v.in_range("days", days, 1, MAX_HISTORY_DAYS)
        return await read_history(self._redis, self._keys, queue, days, self._clock.now_ms())

    async def daily_counts(self, queues: Sequence[str], days: int) -> DailyCounts:
        """Processed/failed per UTC day over the last ``days`` days of each queue given, in one
        pipelined round trip; names are not checked (they come from the queue index)."""
        v.in_range("days", days, 1, MAX_HISTORY_DAYS)
        return await read_daily(self._redis, self._keys, queues, days, self._clock.now_ms())

    async def bulk(self, operation: BulkOperation, queue: str, state: str, narrow: TaskFilter
                   ) -> int:
        """Run, archive or delete every task of ``state`` matching ``narrow``; how many."""
        v.queue_name("queue", queue)
        allowed = ALLOWED_STATES[operation]
        if state not in allowed:
            raise InvalidField(
                "state", f"cannot {operation} every {state or 'unspecified'} task: "
                f"choose one of {', '.join(s.upper() for s in allowed)}")
        v.short_text("filter.type", narrow.type)
        v.short_text("filter.error_type", narrow.error_type)
        v.duration_ms("filter.older_than", narrow.older_than_ms, 0, MAX_OLDER_THAN_MS)
        return await self._bulk.apply(operation, queue, state, narrow, self._clock.now_ms())

    async def search(self, queue: str, state: str, criteria: SearchCriteria, page_size: int,
                     page_token: str) -> SearchResult:
        """One page of the tasks of ``state`` matching every given criterion."""
        v.queue_name("queue", queue)
        if state not in _SEARCHABLE:
            raise InvalidField("state", f"cannot search {state or 'unspecified'} tasks: choose "
                               f"one of {', '.join(s.upper() for s in _SEARCHABLE)} (list a "
                               "group's members with ListGroupMembers)")
        if not criteria.any():
            raise InvalidField("id_prefix", "give at least one criterion: id_prefix, type, "
                               "payload_contains or error_type")
        v.short_text("id_prefix", criteria.id_prefix, 128)
        v.short_text("type", criteria.type)
        v.short_text("error_type", criteria.error_type)
        if len(criteria.payload_contains) > MAX_NEEDLE_BYTES:
            raise InvalidField("payload_contains", f"must be at most {MAX_NEEDLE_BYTES} bytes "
                               f"(got {len(criteria.payload_contains)})")
        size = page_size or DEFAULT_PAGE_SIZE
        v.in_range("page_size", size, 1, MAX_PAGE_SIZE)
        cursor = Cursor.decode(page_token, state, "SearchTasks")
        return await self._searcher.search(queue, state, criteria, size, cursor)

    async def delete_queue(self, queue: str, force: bool) -> int:
        """Forget a queue; how many tasks went with it."""
        v.queue_name("queue", queue)
        return await self._deleter.delete(queue, force, self._clock.now_ms())

    async def server_state(self) -> ServerState:
        """The broker's version and start, and its Redis' state."""
        return await read_server_state(self._redis)
