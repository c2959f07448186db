"""Redis Cluster slots, for the few places that must group work per slot.

A script may only touch keys of one slot, so an index that scripts write beside a queue's keys
(the due indexes) exists once per slot under Cluster. Such a key needs a hash tag that maps to
the queue's slot: :func:`slot_tag` gives one per slot, found once by trying ``~0``, ``~1``, ...
(``~`` cannot start a queue name, so these tags never collide with a queue's).
"""

from __future__ import annotations

from functools import cache

from redis.asyncio import Redis, RedisCluster
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

SLOTS = REDIS_CLUSTER_HASH_SLOTS


def is_cluster(redis: Redis | RedisCluster) -> bool:
    """Whether the client talks to a Redis Cluster."""
    return isinstance(redis, RedisCluster)


def slot_of(key: str) -> int:
    """The slot of a key (its hash tag's, when it has one)."""
    return key_slot(key.encode())


def slot_tag(slot: int) -> str:
    """A hash tag (the text between braces) whose keys live in ``slot``."""
    return _slot_tags()[slot]


@cache
def _slot_tags() -> tuple[str, ...]:
    """The first ``~<n>`` tag of every slot (about 170,000 CRC16s, once per process)."""
    tags: list[str | None] = [None] * SLOTS
    missing = SLOTS
    n = 0
    while missing:
        tag = f"~{n}"
        slot = key_slot(tag.encode())
        if tags[slot] is None:
            tags[slot] = tag
            missing -= 1
        n += 1
    return tuple(tag for tag in tags if tag is not None)
