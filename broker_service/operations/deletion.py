"""DeleteQueue: forget a queue and everything of it, in chunks.

Order of work: refuse (unknown, not empty without force, ACTIVE tasks); pause the queue so
that no lease starts while it is deleted; delete its tasks with their unique locks, at most
CHUNK per queue_delete.lua call (each call refuses, changing nothing, if a task became ACTIVE
before the pause took effect), then its groups and their members (group_delete.lua, as
DeleteGroup does);
then its remaining keys (counters, settings, paused flag, markers) and its entry in the known
queues; finally a SCAN removes the settled markers of tasks acked before (they expire on their
own within a lease length plus 30 s, and no index names them). The state of schedules that
target the queue (their next tick and recent fires, under the queue's hash tag) is kept.

Race with producers: an enqueue that arrives while the queue is being deleted may be deleted
with it, or, arriving after its tasks are gone, recreate the queue (the enqueue registers the
queue again; a check after the removal from the known queues puts the entry back if tasks
arrived meanwhile, so that no task is left in a queue the background loops do not serve).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import structlog
from redis.asyncio import Redis

from leasq_broker.cluster_slots import is_cluster
from leasq_broker.errors import QueueNotEmpty, QueueNotFound, WrongState
from leasq_broker.groups.calls import delete_call
from leasq_broker.keys import Keys
from leasq_broker.models import QueueCounts
from leasq_broker.operations.history import utc_days
from leasq_broker.reader import TaskReader
from leasq_broker.scripts import Scripts
from leasq_broker.store import as_text as text

log = structlog.get_logger(__name__)

#: Most tasks one queue_delete.lua call deletes.
CHUNK = 1000
#: Groups deleted per round trip (one group_delete.lua call each, pipelined).
GROUPS_PER_ROUND = 100
#: Day counters live 90 days; one more for a day that began while the clock was read.
COUNTER_DAYS = 91
_SCAN_COUNT = 1000


def task_count(counts: QueueCounts) -> int:
    """Tasks the queue holds in any state, group members included."""
    return (counts.pending + counts.scheduled + counts.active + counts.retry + counts.archived
            + counts.completed + counts.aggregating)


class QueueDeleter:
    """Deletes whole queues."""

    def __init__(self, redis: Redis, scripts: Scripts, keys: Keys, reader: TaskReader,
                 chunk: int = CHUNK) -> None:
        self._redis = redis
        self._scripts = scripts
        self._keys = keys
        self._reader = reader
        self._chunk = chunk

    async def delete(self, queue: str, force: bool, now_ms: int) -> int:
        """How many tasks were deleted with the queue."""
        k = self._keys
        if not await self._redis.sismember(k.queues(), queue):
            raise QueueNotFound(f"no queue {queue!r}: a queue exists from its first enqueue on "
                                "(check the name)")
        counts = await self._reader.queue_counts(queue, now_ms)
        held = task_count(counts)
        if held and not force:
            raise QueueNotEmpty(
                f"queue {queue!r} holds {held} tasks (pending {counts.pending}, scheduled "
                f"{counts.scheduled}, active {counts.active}, retry {counts.retry}, archived "
                f"{counts.archived}, completed {counts.completed}, aggregating "
                f"{counts.aggregating}): delete them first, or delete the queue with force")
        if counts.active:
            raise self._active(queue, counts.active)
        was_paused = counts.paused
        await self._redis.set(k.paused(queue), b"1")
        deleted = 0
        try:
            while True:
                reply = await self._scripts.call("queue_delete", [
                    k.pending(queue), k.scheduled(queue), k.retry(queue), k.archived(queue),
                    k.completed(queue), k.active(queue), k.key_ring(queue), k.flow(queue),
                    k.tasks(queue), k.envelopes(queue), k.unique_locks(queue),
                    k.unique_expiry(queue), k.key_pending(queue), k.key_position(queue),
                ], [self._chunk])
                if int(reply[0]) < 0:
                    active = int(await self._redis.zcard(k.active(queue)))
                    raise self._active(queue, active)
                deleted += int(reply[0])
                if int(reply[1]):
                    break
        except WrongState:
            if not was_paused and not deleted:
                await self._redis.delete(k.paused(queue))
            raise
        deleted += await self._delete_groups(queue)
        await self._forget(queue, now_ms)
        log.info("queue deleted", queue=queue, deleted_tasks=deleted, forced=force)
        return deleted

    async def _delete_groups(self, queue: str) -> int:
        """Delete every group of the queue with its members (group_delete.lua, as DeleteGroup
        does), GROUPS_PER_ROUND groups per round trip; how many members went."""
        k = self._keys
        deleted = 0
        while True:
            raw: list[bytes] = await self._redis.zrange(  # type: ignore[assignment]
                k.groups(queue), 0, GROUPS_PER_ROUND - 1)
            ids = [text(g) for g in raw]
            if not ids:
                return deleted
            replies = await self._scripts.call_many([delete_call(k, queue, gid) for gid in ids])
            deleted += sum(int(reply) for reply in replies)

    @staticmethod
    def _active(queue: str, active: int) -> WrongState:
        return WrongState(f"queue {queue!r} has {active} active tasks: cancel them or wait "
                          "until they finish, then delete the queue again")

    async def _forget(self, queue: str, now_ms: int) -> None:
        """Every key of the queue but the schedules', and its entries in the queue indexes."""
        k = self._keys
        names = [k.paused(queue), k.queue_settings(queue), k.aggregating(queue),
                 k.waiting(queue), k.processed(queue), k.failed(queue), k.groups(queue),
                 k.group_due(queue), k.group_times(queue), k.flow(queue), k.held(queue),
                 k.key_ring(queue), k.key_active(queue)]
        # Not the task hashes, unique locks and key pending set: the scripts emptied them
        # (Redis drops an empty hash or set), and a racing enqueue's tasks live there.
        for day in utc_days(now_ms, COUNTER_DAYS):
            names += [k.processed(queue, day), k.failed(queue, day)]
        pipe = self._redis.pipeline(transaction=False)
        pipe.delete(*names)
        pipe.srem(k.queues(), queue)
        pipe.srem(k.grouped_queues(), queue)
        await pipe.execute()
        await self._sweep(queue)
        again = await self._reader.queue_counts(queue, now_ms)
        if task_count(again):  # an enqueue raced with the deletion: keep serving its tasks
            await self._redis.sadd(k.queues(), queue)
            log.warning("tasks were enqueued while their queue was deleted; the queue exists "
                        "again", queue=queue, tasks=task_count(again))

    async def _sweep(self, queue: str) -> None:
        """Delete the queue's settled markers (SCAN: nothing indexes them)."""
        async for batch in _scan(self._redis, self._keys.settled(queue, "*")):
            await self._redis.unlink(*batch)


async def _scan(redis: Redis, pattern: str) -> AsyncIterator[list[str]]:
    # On a Redis Cluster the pattern's hash tag (the queue) names the one primary to scan,
    # which answers its cursor keyed by node name.
    cluster: Any = redis
    on_node = {"target_nodes": cluster.get_node_from_key(pattern)} if is_cluster(redis) else {}
    cursor: Any = 0
    while True:
        cursor, found = await redis.scan(cursor, match=pattern, count=_SCAN_COUNT, **on_node)
        if isinstance(cursor, dict):
            cursor = next(iter(cursor.values()))
        if found:
            yield [key.decode() if isinstance(key, bytes) else key for key in found]
        if not int(cursor):
            return
