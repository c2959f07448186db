"""RunAllTasks, ArchiveAllTasks and DeleteAllTasks: one state's tasks moved in chunks.

Each chunk is one bulk.lua call that examines at most CHUNK tasks of the state's index, so
Redis is never blocked for more than a few milliseconds and workers keep leasing between
chunks. The script answers a cursor (the last task it examined and left in place) from which
the next chunk goes on, so the walk progresses even when the filter skips every task of a
chunk, and ends when the index was walked to its end.
"""

from __future__ import annotations

from typing import Literal

import structlog

from leasq_broker.keys import Keys
from leasq_broker.operations.cursor import Cursor, index_kind
from leasq_broker.operations.models import TaskFilter
from leasq_broker.scripts import Scripts

log = structlog.get_logger(__name__)

BulkOperation = Literal["run", "archive", "delete"]

#: The states each operation may name (the single-task transitions' rules).
ALLOWED_STATES: dict[BulkOperation, tuple[str, ...]] = {
    "run": ("scheduled", "retry", "archived"),
    "archive": ("pending", "scheduled", "retry"),
    "delete": ("pending", "scheduled", "retry", "archived", "completed"),
}
#: Most tasks one script call examines. The contract allows 1,000; a chunk of 1,000 costs
#: Redis 7-15 ms of CPU on a 2-core machine (benchmarks/bulk_bench.py), 250 keeps every call
#: within a few ms while the round trips between chunks add about 1 % to the total time.
CHUNK = 250


class BulkMover:
    """Runs the chunks of one bulk operation until the state's index is exhausted."""

    def __init__(self, scripts: Scripts, keys: Keys, chunk: int = CHUNK) -> None:
        self._scripts = scripts
        self._keys = keys
        self._chunk = chunk

    async def apply(self, operation: BulkOperation, queue: str, state: str,
                    narrow: TaskFilter, now_ms: int) -> int:
        """How many tasks moved. A cancelled call keeps what its finished chunks moved."""
        k = self._keys
        index = k.pending(queue) if state == "pending" else getattr(k, state)(queue)
        keys = [index, k.pending(queue), k.archived(queue), k.waiting(queue),
                k.queue_settings(queue), k.flow(queue), k.key_ring(queue), k.key_active(queue),
                k.due_janitor(queue), k.tasks(queue), k.envelopes(queue),
                k.unique_locks(queue), k.unique_expiry(queue), k.key_pending(queue),
                k.key_position(queue)]
        before = -1 if narrow.older_than_ms is None else now_ms - narrow.older_than_ms
        cursor = Cursor()
        moved = chunks = 0
        while True:
            reply = await self._scripts.call("bulk", keys, [
                operation, state, index_kind(state), cursor.task_id, cursor.score,
                self._chunk, now_ms, narrow.type, narrow.error_type, before,
                k.notify_channel(), queue,
            ])
            moved += int(reply[0])
            chunks += 1
            if int(reply[1]):
                break
            cursor = Cursor(_text(reply[2]), _text(reply[3]))
        log.info("bulk operation done", operation=operation, queue=queue, state=state,
                 moved=moved, chunks=chunks)
        return moved


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
