"""The Redis side of groups: settings, reads for Inspect, and the flush/delete transitions.

A queue's groups live in its slot: per group a member list and an info hash, per queue a size
index, a due index (flush instants), the groups' join times and an aggregating counter. The
aggregator's index of which queues may hold groups is one set in a slot of its own; an enqueue
adds to it after its script ran, and the aggregator removes a queue only after seeing its due
index empty, checking again after the removal (so a group created meanwhile is never left out
of the index).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

from leasq_broker.groups.calls import FLUSH_DUE, delete_call, flush_call
from leasq_broker.groups.models import (
    GRACE_FIELD,
    MAX_DELAY_FIELD,
    MAX_SIZE_FIELD,
    GroupSettings,
    GroupView,
    SettingsUpdate,
    parse_group_id,
)
from leasq_broker.keys import Keys
from leasq_broker.scripts import Scripts
from leasq_broker.store import as_text

_FIELDS = {"grace_ms": GRACE_FIELD, "max_delay_ms": MAX_DELAY_FIELD, "max_size": MAX_SIZE_FIELD}


@dataclass(frozen=True, slots=True)
class FlushOutcome:
    """What one flush script did in one queue: (task id, members) per flushed group, and the
    queue's earliest planned flush afterwards (None: no group left)."""

    flushed: list[tuple[str, int]]
    next_due_ms: int | None


class GroupStore:
    """Runs the group commands and scripts against one Redis."""

    def __init__(self, redis: Redis, scripts: Scripts, keys: Keys) -> None:
        self._redis = redis
        self._scripts = scripts
        self._keys = keys

    async def settings(self, queue: str) -> GroupSettings:
        raw = await self._redis.hmget(self._keys.queue_settings(queue), list(_FIELDS.values()))
        return _settings(raw)

    async def update_settings(self, queue: str, update: SettingsUpdate) -> GroupSettings:
        """Apply ``update`` and read the settings back, in one transaction and round trip."""
        key = self._keys.queue_settings(queue)
        values = {
            field: getattr(update, name) for name, field in _FIELDS.items()
            if getattr(update, name) is not None}
        reset = [field for name, field in _FIELDS.items() if name in update.reset]
        pipe = self._redis.pipeline(transaction=True)
        for field, value in values.items():
            pipe.hset(key, field, value)
        if reset:
            pipe.hdel(key, *reset)
        pipe.hmget(key, list(_FIELDS.values()))
        replies = await pipe.execute()
        return _settings(replies[-1])

    async def page(self, queue: str, offset: int, limit: int) -> tuple[list[GroupView], int]:
        """Groups largest first (ties by id), with their times, and the number of groups."""
        k = self._keys
        pipe = self._redis.pipeline(transaction=False)
        pipe.zrevrange(k.groups(queue), offset, offset + limit - 1, withscores=True)
        pipe.zcard(k.groups(queue))
        entries, total = await pipe.execute()
        pipe = self._redis.pipeline(transaction=False)
        gids = [as_text(raw) for raw, _ in entries]
        for gid in gids:
            pipe.hmget(k.group_times(queue), [f"f:{gid}", f"l:{gid}"])
            pipe.zscore(k.group_due(queue), gid)
        replies = await pipe.execute()
        views = []
        for i, (gid, (_, size)) in enumerate(zip(gids, entries, strict=True)):
            (first, last), due = replies[2 * i], replies[2 * i + 1]
            if first is None or due is None:
                continue  # flushed between the two reads
            task_type, group = parse_group_id(gid)
            views.append(GroupView(queue, task_type, group, int(size), int(first), int(last),
                                   int(due)))
        return views, int(total)

    async def member_ids(self, queue: str, gid: str, offset: int, limit: int
                         ) -> tuple[list[str], int]:
        key = self._keys.group_members(queue, gid)
        pipe = self._redis.pipeline(transaction=False)
        pipe.lrange(key, offset, offset + limit - 1)
        pipe.llen(key)
        ids, total = await pipe.execute()
        return [as_text(i) for i in ids], int(total)

    async def flush(self, work: Sequence[tuple[str, Sequence[str]]], now_ms: int,
                    mode: str = FLUSH_DUE) -> list[FlushOutcome]:
        """Flush groups ``(queue, group ids)`` in one round trip; an outcome per queue."""
        calls = [flush_call(self._keys, queue, gids, now_ms, mode) for queue, gids in work]
        outcomes = []
        for reply in await self._scripts.call_many(calls):
            pairs = [(as_text(reply[i]), int(reply[i + 1])) for i in range(0, len(reply) - 1, 2)]
            head = int(float(reply[-1]))
            outcomes.append(FlushOutcome([p for p in pairs if p[1] > 0],
                                         head if head >= 0 else None))
        return outcomes

    async def delete(self, queue: str, gid: str) -> int:
        call = delete_call(self._keys, queue, gid)
        return int(await self._scripts.call(call.name, call.keys, call.args))

    async def grouped_queues(self) -> list[str]:
        return sorted(as_text(q) for q in await self._redis.smembers(self._keys.grouped_queues()))

    async def due(self, queues: Sequence[str], now_ms: int, limit: int
                  ) -> list[tuple[list[str], int | None]]:
        """Per queue: up to ``limit`` due group ids, and its earliest flush instant (None: no
        group)."""
        pipe = self._redis.pipeline(transaction=False)
        for queue in queues:
            pipe.zrange(self._keys.group_due(queue), 0, limit - 1, withscores=True)
        out = []
        for entries in await pipe.execute():
            due = [as_text(gid) for gid, score in entries if score <= now_ms]
            out.append((due, int(entries[0][1]) if entries else None))
        return out

    async def forget(self, queue: str) -> None:
        """Drop a queue without groups from the aggregator's index, unless a group appeared."""
        await self._redis.srem(self._keys.grouped_queues(), queue)
        if await self._redis.zcard(self._keys.group_due(queue)):
            await self._redis.sadd(self._keys.grouped_queues(), queue)


def _settings(raw: Sequence[bytes | str | None]) -> GroupSettings:
    """Stored values (HMGET of the ``_FIELDS``), defaults for the unset ones."""
    defaults = GroupSettings()
    return GroupSettings(**{
        name: int(value) if value is not None else getattr(defaults, name)
        for name, value in zip(_FIELDS, raw, strict=True)
    })
