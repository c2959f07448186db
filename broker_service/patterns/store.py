"""The two Redis reads behind patterns: the known queues, and which queues hold pending tasks.

Neither is a transition (nothing is written), so no script: one SCARD (and SMEMBERS when the
size changed), and one pipeline of
LLEN over the asked queues' pending list and concurrency-key ring, with EXISTS of their paused
flag (grouped per slot by the client under Redis Cluster).
"""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis

from leasq_broker.keys import Keys


class PatternStore:
    """Reads for :class:`~leasq_broker.patterns.index.PatternIndex`."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def known_queues(self) -> set[str]:
        members = await self._redis.smembers(self._keys.queues())
        return {m.decode() if isinstance(m, bytes) else str(m) for m in members}

    async def known_count(self) -> int:
        return int(await self._redis.scard(self._keys.queues()))

    async def pending_counts(self, queues: Sequence[str]) -> list[int]:
        """Ready tasks per queue as far as a probe can tell (0 for a paused queue)."""
        if not queues:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for queue in queues:
            pipe.llen(self._keys.pending(queue))
            pipe.llen(self._keys.key_ring(queue))  # concurrency keys with tasks and a free slot
            pipe.exists(self._keys.paused(queue))  # a paused queue has nothing to lease
        replies = [int(value) for value in await pipe.execute()]
        return [0 if replies[i + 2] else replies[i] + replies[i + 1]
                for i in range(0, len(replies), 3)]
