"""The due indexes that drive the forwarder, the reclaimer and the janitor.

Each kind of background work has a sorted set of queues scored by the instant (ms) its work
falls due in that queue (keys: :meth:`leasq_broker.keys.Keys.due_forward` and siblings). The
scripts that add such work file the queue with ``ZADD ... LT`` (the earliest instant wins); a
loop reads only the queues whose instant has come, runs its script on them, and that script
re-files each queue at its true next instant or drops it. An instant that went stale (a task
acked, a lease extended) only costs one visit that finds nothing to do. So a tick costs what is
due, never the number of queues.

Data written before the indexes existed is indexed once at start (:meth:`DueIndex.build`):
every known queue is filed as due at once in every index, and the loops' first passes put each
at its true instant.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from redis.asyncio import Redis

from leasq_broker.keys import DUE_KINDS, Keys
from leasq_broker.store import as_text

log = structlog.get_logger(__name__)

VERSION = b"1"
BUILD_CHUNK = 1000


@dataclass(frozen=True, slots=True)
class DueQueues:
    """The queues whose instant has come (oldest first), and the index's earliest instant as
    read with them (None: the index is empty)."""

    queues: list[str]
    earliest_ms: int | None


class DueIndex:
    """Reads the due indexes; the scripts write them.

    On one Redis each kind has one index. Under Cluster each kind has one index per slot that
    holds a known queue (:meth:`leasq_broker.keys.Keys.due_index`): a read visits every such
    slot in one pipeline (one round trip per primary), so its cost follows the number of
    occupied slots (at most 16,384), not the number of queues.
    """

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def due(self, kind: str, now_ms: int, limit: int) -> DueQueues:
        """Up to ``limit`` queues whose ``kind`` work is due at ``now_ms``."""
        if self._keys.cluster:
            slots = await self._redis.smembers(self._keys.due_slots())
            index_keys = [self._keys.due_in_slot(kind, int(slot)) for slot in slots]
        else:
            index_keys = [self._keys.due_index(kind, "")]
        if not index_keys:
            return DueQueues([], None)
        pipe = self._redis.pipeline(transaction=False)
        for key in index_keys:
            pipe.zrange(key, "-inf", now_ms, byscore=True, offset=0, num=limit)
            pipe.zrange(key, 0, 0, withscores=True)
        replies = await pipe.execute()
        queues: list[str] = []
        heads: list[int] = []
        for due, head in zip(replies[::2], replies[1::2], strict=True):
            queues.extend(as_text(queue) for queue in due)
            if head:
                heads.append(int(head[0][1]))
        return DueQueues(queues[:limit], min(heads) if heads else None)

    async def build(self) -> int:
        """File every known queue as due now in every index, unless the indexes' version says
        they were built; the number of queues filed (0: already built).

        Safe in several replicas at once and after a crash half-way: filing is idempotent and
        the version is written last."""
        k = self._keys
        if await self._redis.get(k.due_version()) == VERSION:
            return 0
        filed = 0
        cursor = 0
        while True:
            cursor, chunk = await self._redis.sscan(k.queues(), cursor, count=BUILD_CHUNK)
            if chunk:
                names = [as_text(q) for q in chunk]
                pipe = self._redis.pipeline(transaction=False)
                for command in k.register_queues(names):
                    pipe.execute_command(*command)
                for name in names:
                    for kind in DUE_KINDS:
                        pipe.zadd(k.due_index(kind, name), {name: 0}, lt=True)
                await pipe.execute()
                filed += len(chunk)
            if cursor == 0:
                break
        await self._redis.set(k.due_version(), VERSION)
        log.info("due indexes built from the known queues", queues=filed)
        return filed


def pause_until(earliest_ms: int | None, now_ms: int, longest_s: float, *,
                after_s: float = 0.0) -> float:
    """Seconds to sleep until ``earliest_ms`` (plus ``after_s``), at most ``longest_s``."""
    if earliest_ms is None:
        return longest_s
    return min(longest_s, max(0.0, (earliest_ms - now_ms) / 1000 + after_s))
