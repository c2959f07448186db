"""Read-only views of Redis for the Inspect calls: a task, a page of tasks, queue counters,
a queue's approximate memory.

Reads are pipelined so that a dashboard polling stats costs one round trip per call, and the
stats of every queue together one round trip too (``queue_stats.lua`` per queue, pipelined).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from redis.asyncio import Redis

from leasq_broker.keys import Keys
from leasq_broker.models import QueueCounts, StoredTask
from leasq_broker.scripts import ScriptCall, Scripts
from leasq_broker.store import as_text as text
from leasq_broker.store import utc_day
from leasq_broker.task_records import read_record, read_records

SORTED_STATES = ("scheduled", "retry", "active", "archived", "completed")
# Task hashes sampled per state for a queue's memory estimate (as Asynq samples 20).
MEMORY_SAMPLES = 20
# Per task, the bookkeeping of its two hash entries (record, envelope): an estimate.
TASK_OVERHEAD_BYTES = 48


class TaskReader:
    """Answers the Inspect queries."""

    def __init__(self, redis: Redis, keys: Keys, scripts: Scripts | None = None) -> None:
        self._redis = redis
        self._keys = keys
        # Without the broker's loaded scripts (tests that read only), load them on first use.
        self._scripts = scripts or Scripts(redis)
        self._loaded = scripts is not None

    async def get_task(self, queue: str, task_id: str) -> StoredTask | None:
        raw = await read_record(self._redis, self._keys, queue, task_id)
        return _stored(queue, task_id, raw) if raw else None

    async def list_tasks(
        self, queue: str, state: str, offset: int, limit: int
    ) -> tuple[list[StoredTask], int]:
        """A page of task ids in ``state`` (oldest first) with their records, and the total."""
        ids, total = await self._page_ids(queue, state, offset, limit)
        return await self.tasks(queue, ids), total

    async def tasks(self, queue: str, ids: list[str]) -> list[StoredTask]:
        """The records of these tasks, in order; tasks that are gone are left out."""
        records = await read_records(self._redis, self._keys, queue, ids)
        return [
            _stored(queue, task_id, raw)
            for task_id, raw in zip(ids, records, strict=True)
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

    async def queue_counts(self, queue: str, now_ms: int, *, memory: bool = False
                           ) -> QueueCounts:
        """The queue's counts and counters; ``memory``: with its approximate memory too (a
        second and third round trip)."""
        counts = (await self.many_queue_counts([queue], now_ms))[0]
        if memory:
            counts = dataclasses.replace(counts, memory_bytes=await self.memory_bytes(counts))
        return counts

    async def many_queue_counts(self, queues: Sequence[str], now_ms: int) -> list[QueueCounts]:
        """The counts of every queue given, in one pipelined round trip."""
        k = self._keys
        day = utc_day(now_ms)
        calls = [
            ScriptCall("queue_stats", [
                k.paused(q), k.pending(q), k.scheduled(q), k.retry(q), k.active(q),
                k.archived(q), k.completed(q), k.processed(q, day), k.failed(q, day),
                k.processed(q), k.failed(q), k.aggregating(q), k.flow(q), k.tasks(q),
                k.envelopes(q),
            ], [])
            for q in queues
        ]
        if not calls:
            return []
        if not self._loaded:
            await self._scripts.load()
            self._loaded = True
        replies = await self._scripts.call_many(calls)
        return [_counts(queue, [int(v) for v in reply])
                for queue, reply in zip(queues, replies, strict=True)]

    async def memory_bytes(self, counts: QueueCounts) -> int:
        """Approximate Redis memory of a queue: ``MEMORY USAGE`` of its index and counter keys,
        plus, per state, the mean size of up to MEMORY_SAMPLES tasks (the oldest) times the
        state's count. Like Asynq's estimate: cheap, and close when tasks look alike.

        A task is a field in each of the queue's two task hashes (record, envelope), which
        ``MEMORY USAGE`` cannot measure one by one: a task's size is estimated as the lengths
        of its id (twice), packed record and envelope plus :data:`TASK_OVERHEAD_BYTES` (two
        hash entries' bookkeeping)."""
        k, q = self._keys, counts.queue
        fixed = [k.pending(q), *(getattr(k, s)(q) for s in SORTED_STATES), k.paused(q),
                 k.unique_locks(q), k.unique_expiry(q), k.key_pending(q), k.key_position(q),
                 k.processed(q), k.failed(q), k.aggregating(q), k.groups(q), k.group_due(q),
                 k.queue_settings(q)]
        sizes = {"pending": counts.pending, "scheduled": counts.scheduled,
                 "retry": counts.retry, "active": counts.active, "archived": counts.archived,
                 "completed": counts.completed}
        pipe = self._redis.pipeline(transaction=False)
        for key in fixed:
            pipe.memory_usage(key)
        pipe.lrange(k.pending(q), -MEMORY_SAMPLES, -1)
        for state in SORTED_STATES:
            pipe.zrange(getattr(k, state)(q), 0, MEMORY_SAMPLES - 1)
        pipe.zrevrange(k.groups(q), 0, 0)
        replies = await pipe.execute()
        total = sum(int(r or 0) for r in replies[: len(fixed)])
        samples = dict(zip(("pending", *SORTED_STATES), replies[len(fixed):-1], strict=True))
        largest_group = replies[-1]
        if largest_group and counts.aggregating:
            samples["aggregating"] = await self._redis.lrange(
                k.group_members(q, text(largest_group[0])), 0, MEMORY_SAMPLES - 1)
            sizes["aggregating"] = counts.aggregating
        pipe = self._redis.pipeline(transaction=False)
        drawn = [(state, [text(i) for i in ids]) for state, ids in samples.items() if ids]
        for _state, ids in drawn:
            pipe.hmget(k.tasks(q), ids)
            pipe.hmget(k.envelopes(q), ids)
        found = iter(await pipe.execute()) if drawn else iter(())
        for state, ids in drawn:
            records, envelopes = next(found), next(found)
            measured = [
                2 * len(task_id.encode()) + len(record or b"") + len(envelope or b"")
                + TASK_OVERHEAD_BYTES
                for task_id, record, envelope in zip(ids, records, envelopes, strict=True)
            ]
            total += sum(measured) * sizes[state] // len(measured)
        return total

    async def queue_names(self) -> list[str]:
        """Every known queue, sorted."""
        return sorted(text(m) for m in await self._redis.smembers(self._keys.queues()))

    async def queue_known(self, queue: str) -> bool:
        """Whether ``queue`` was ever enqueued to (and not deleted since)."""
        return bool(await self._redis.sismember(self._keys.queues(), queue))

    async def list_queues(self) -> list[tuple[str, bool]]:
        names = await self.queue_names()
        pipe = self._redis.pipeline(transaction=False)
        for name in names:
            pipe.exists(self._keys.paused(name))
        return [(name, bool(p)) for name, p in zip(names, await pipe.execute(), strict=True)]


def _counts(queue: str, v: list[int]) -> QueueCounts:
    """QueueCounts from queue_stats.lua's reply."""
    return QueueCounts(
        queue, bool(v[0]), v[1], v[2], v[4], v[3], v[5], v[6], v[7], v[8], v[9], v[10],
        v[12] if v[12] >= 0 else None, v[11],
    )


def _stored(queue: str, task_id: str, raw: Mapping[Any, Any]) -> StoredTask:
    raw = dict(raw)
    envelope = raw.pop(b"b", b"")
    result = raw.pop(b"res", b"")
    fields = {key.decode(): value.decode(errors="replace") for key, value in raw.items()}
    return StoredTask(queue, task_id, envelope, fields.get("s", ""), fields, result)
