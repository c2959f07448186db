"""Helpers for store-level tests: a fixed instant and a dump of the whole keyspace."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from leasq_broker.clock import ManualClock
from leasq_broker.keys import Keys
from leasq_broker.store import TaskStore
from leasq_broker.task_records import pack_record, read_record, with_envelope

T0 = 1_800_000_000_000  # a fixed instant (ms) for transition tests



@dataclass
class StoreEnv:
    """What a transition test works with."""

    redis: Redis
    store: TaskStore
    keys: Keys
    clock: ManualClock

# A due index of one Cluster slot (see Keys.due_in_slot).
_PER_SLOT_DUE = re.compile(r"^(.*):\{~\d+\}:due:(\w+)$")


async def all_keys(redis: Redis, pattern: str = "*") -> list[bytes]:
    """Every key matching ``pattern``, sorted; on a Redis Cluster, of every primary (``KEYS``
    would ask one node)."""
    return sorted({key async for key in redis.scan_iter(match=pattern, count=1000)})


async def snapshot(redis: Redis) -> dict[str, Any]:
    """The whole keyspace as plain values, to compare a transition's entire result.

    A queue's task records hash (``<q>:tasks``) and envelopes hash (``<q>:env``) show as one
    entry per task, ``<q>:tasks/<id>``: the record's fields (unpacked) plus the envelope as
    ``b``; an envelope without a record shows as ``<q>:env/<id>``.
    On a Redis Cluster the due indexes exist per slot: they show under their one-Redis names
    (``leasq:{~due}:forward``...), and the registry of occupied slots is left out, so that one
    expected state holds on both kinds of Redis."""
    state: dict[str, Any] = {}
    for raw_key in await all_keys(redis):
        key = _PER_SLOT_DUE.sub(r"\1:{~due}:\2", raw_key.decode())
        if key.endswith(":{~due}:slots"):
            continue
        kind = (await redis.type(raw_key)).decode()
        if kind == "hash" and key.endswith(":tasks"):
            envelopes = await redis.hgetall(key.removesuffix(":tasks") + ":env")
            for task_id, raw in (await redis.hgetall(raw_key)).items():
                fields = with_envelope(raw, envelopes.get(task_id))
                state[f"{key}/{task_id.decode()}"] = {
                    k.decode(): v.decode() for k, v in fields.items()}
        elif kind == "hash" and key.endswith(":env"):
            records = await redis.hgetall(key.removesuffix(":env") + ":tasks")
            for task_id, envelope in (await redis.hgetall(raw_key)).items():
                if task_id not in records:
                    state[f"{key}/{task_id.decode()}"] = envelope.decode()
        elif kind == "hash":
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


async def seed_task(redis: Redis, queue: str, task_id: str, fields: dict[str, Any]) -> None:
    """Store a task as the scripts do: its fields (as strings) in the queue's records hash,
    ``b`` (when given) in its envelopes hash."""
    keys = Keys()
    values = {k: str(v) for k, v in fields.items() if k != "b"}
    await redis.hset(keys.tasks(queue), task_id, pack_record(values))
    if "b" in fields:
        await redis.hset(keys.envelopes(queue), task_id, fields["b"])


async def task_fields(redis: Redis, queue: str, task_id: str) -> dict[str, str]:
    """A task's fields as text (with its envelope as ``b``); ``{}`` when the task is absent."""
    raw = await read_record(redis, Keys(), queue, task_id)
    return {k.decode(): v.decode(errors="replace") for k, v in raw.items()}


async def hold_lock(redis: Redis, queue: str, digest: str, holder: str,
                    expires_ms: int = T0 + 60_000) -> None:
    """A unique lock held by ``holder`` until ``expires_ms``, as ``lua/_unique.lua`` takes it."""
    keys = Keys()
    await redis.hset(keys.unique_locks(queue), digest, holder)
    await redis.zadd(keys.unique_expiry(queue), {digest: expires_ms})
