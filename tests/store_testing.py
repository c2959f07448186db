"""Helpers for store-level tests: a fixed instant and a dump of the whole keyspace."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from leasq_broker.clock import ManualClock
from leasq_broker.keys import Keys
from leasq_broker.store import TaskStore

T0 = 1_800_000_000_000  # a fixed instant (ms) for transition tests



@dataclass
class StoreEnv:
    """What a transition test works with."""

    redis: Redis
    store: TaskStore
    keys: Keys
    clock: ManualClock


async def snapshot(redis: Redis) -> dict[str, Any]:
    """The whole keyspace as plain values, to compare a transition's entire result."""
    state: dict[str, Any] = {}
    for raw_key in sorted(await redis.keys("*")):
        key = raw_key.decode()
        kind = (await redis.type(raw_key)).decode()
        if kind == "hash":
            state[key] = {k.decode(): v.decode() for k, v in (await redis.hgetall(raw_key)).items()}
        elif kind == "list":
            state[key] = [v.decode() for v in await redis.lrange(raw_key, 0, -1)]
        elif kind == "zset":
            state[key] = [(m.decode(), int(s)) for m, s in
                          await redis.zrange(raw_key, 0, -1, withscores=True)]
        elif kind == "set":
            state[key] = sorted(m.decode() for m in await redis.smembers(raw_key))
        else:
            state[key] = (await redis.get(raw_key) or b"").decode()
    return state
