"""Read-only views of Redis for the Inspect calls: a task, a page of tasks, queue counters.

Reads are pipelined so that a dashboard polling stats costs one round trip per call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from redis.asyncio import Redis

from leasq_broker.keys import Keys
from leasq_broker.models import QueueCounts, StoredTask
from leasq_broker.store import as_text as text
from leasq_broker.store import utc_day

SORTED_STATES = ("scheduled", "retry", "active", "archived", "completed")


class TaskReader:
    """Answers the Inspect queries."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def get_task(self, queue: str, task_id: str) -> StoredTask | None:
        raw = await self._redis.hgetall(self._keys.task(queue, task_id))
        return _stored(queue, task_id, raw) if raw else None

    async def list_tasks(
        self, queue: str, state: str, offset: int, limit: int
    ) -> tuple[list[StoredTask], int]:
        """A page of task ids in ``state`` (oldest first) with their records, and the total."""
        ids, total = await self._page_ids(queue, state, offset, limit)
        return await self.tasks(queue, ids), total

    async def tasks(self, queue: str, ids: list[str]) -> list[StoredTask]:
        """The records of these tasks, in order; tasks that are gone are left out."""
        pipe = self._redis.pipeline(transaction=False)
        for task_id in ids:
            pipe.hgetall(self._keys.task(queue, task_id))
        return [
            _stored(queue, task_id, raw)
            for task_id, raw in zip(ids, await pipe.execute(), strict=True)
            if raw
        ]

    async def _page_ids(
        self, queue: str, state: str, offset: int, limit: int
    ) -> tuple[list[str], int]:
        k = self._keys
        pipe = self._redis.pipeline(transaction=False)
        if state == "pending":
            # The list's right end is the next to lease: read from the right.
            pipe.lrange(k.pending(queue), -(offset + limit), -(offset + 1))
            pipe.llen(k.pending(queue))
            raw_ids, total = await pipe.execute()
            raw_ids = list(reversed(raw_ids))
        elif state in SORTED_STATES:
            zkey = getattr(k, state)(queue)
            pipe.zrange(zkey, offset, offset + limit - 1)
            pipe.zcard(zkey)
            raw_ids, total = await pipe.execute()
        elif state == "aggregating":
            return await self._member_ids(queue, offset, limit)
        else:
            return [], 0
        return [raw.decode() for raw in raw_ids], int(total)

    async def _member_ids(self, queue: str, offset: int, limit: int) -> tuple[list[str], int]:
        """A page of AGGREGATING task ids: the groups' members, largest group first, each
        group's in join order."""
        k = self._keys
        entries: list[tuple[bytes, float]] = await self._redis.zrevrange(
            k.groups(queue), 0, -1, withscores=True)  # type: ignore[assignment]
        total = int(await self._redis.get(k.aggregating(queue)) or 0)
        ids: list[str] = []
        skip = offset
        for raw_gid, size in entries:
            if len(ids) >= limit:
                break
            if skip >= size:
                skip -= int(size)
                continue
            members = await self._redis.lrange(k.group_members(queue, text(raw_gid)), skip,
                                               skip + limit - len(ids) - 1)
            ids += [text(m) for m in members]
            skip = 0
        return ids, total

    async def queue_counts(self, queue: str, now_ms: int) -> QueueCounts:
        k = self._keys
        day = utc_day(now_ms)
        pipe = self._redis.pipeline(transaction=False)
        pipe.exists(k.paused(queue))
        pipe.llen(k.pending(queue))
        for state in SORTED_STATES:
            pipe.zcard(getattr(k, state)(queue))
        pipe.mget(k.processed(queue, day), k.failed(queue, day), k.processed(queue),
                  k.failed(queue))
        pipe.lindex(k.pending(queue), -1)
        pipe.get(k.aggregating(queue))
        (paused, pending, scheduled, retry, active, archived, completed, counters, oldest,
         aggregating) = await pipe.execute()
        oldest_ms = None
        if oldest is not None:
            since = await self._redis.hget(k.task(queue, oldest.decode()), "na")
            oldest_ms = int(since) if since is not None else None
        processed_today, failed_today, processed_total, failed_total = (
            int(v or 0) for v in counters
        )
        return QueueCounts(
            queue, bool(paused), int(pending), int(scheduled), int(active), int(retry),
            int(archived), int(completed), processed_today, failed_today, processed_total,
            failed_total, oldest_ms, int(aggregating or 0),
        )

    async def list_queues(self) -> list[tuple[str, bool]]:
        names = sorted(text(m) for m in await self._redis.smembers(self._keys.queues()))
        pipe = self._redis.pipeline(transaction=False)
        for name in names:
            pipe.exists(self._keys.paused(name))
        return [(name, bool(p)) for name, p in zip(names, await pipe.execute(), strict=True)]


def _stored(queue: str, task_id: str, raw: Mapping[Any, Any]) -> StoredTask:
    raw = dict(raw)
    envelope = raw.pop(b"b", b"")
    result = raw.pop(b"res", b"")
    fields = {key.decode(): value.decode(errors="replace") for key, value in raw.items()}
    return StoredTask(queue, task_id, envelope, fields.get("s", ""), fields, result)
