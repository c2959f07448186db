"""One-time moves of stored data to the current storage layout, run at broker start.

Layout 2 (see :mod:`leasq_broker.keys`) keeps a queue's task records, envelopes, unique locks
and concurrency keys' PENDING tasks in a few per-queue keys, so that every key a script
touches is in ``KEYS`` (Redis Cluster). A deployment's Redis written by layout 1 holds a hash
per task (``t:<id>``), a string per unique lock (``u:<digest>``) and a list per concurrency key
(``kp:<key>``): :func:`migrate_layout` moves them, a chunk at a time (one ``migrate_layout.lua``
call per chunk of one queue, so no call holds Redis long), before the loops start.

Idempotent and safe to interrupt: each chunk deletes the old keys it moved, and the layout
version is written last, so a broker that crashed half-way (or a second replica starting at
the same time) finds the rest and moves it. Found by SCAN: under Redis Cluster the client's
SCAN must reach every primary (the cluster client does).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import structlog
from redis.asyncio import Redis

from leasq_broker.keys import Keys
from leasq_broker.scripts import ScriptArg, Scripts
from leasq_broker.store import as_text

log = structlog.get_logger(__name__)

LAYOUT_VERSION = "2"
# Old keys moved per script call.
CHUNK = 200
_SCAN_COUNT = 1000


async def migrate_layout(redis: Redis, scripts: Scripts, keys: Keys) -> dict[str, int] | None:
    """Move layout-1 data of every known queue to layout 2, unless the layout version says
    it was done; the counts moved (tasks, locks, key lists), or None when nothing was to do.
    ``scripts`` must be loaded."""
    version = await redis.get(keys.layout_version())
    if version is not None and as_text(version) == LAYOUT_VERSION:
        return None
    counts = {"queues": 0, "tasks": 0, "unique_locks": 0, "key_lists": 0}
    for raw in await redis.smembers(keys.queues()):
        queue = as_text(raw)
        counts["queues"] += 1
        counts["tasks"] += await _move_tasks(redis, scripts, keys, queue)
        counts["unique_locks"] += await _move_locks(redis, scripts, keys, queue)
        counts["key_lists"] += await _move_key_lists(redis, scripts, keys, queue)
    await redis.set(keys.layout_version(), LAYOUT_VERSION)
    log.info("storage layout migrated", layout=LAYOUT_VERSION, **counts)
    return counts


async def _move_tasks(redis: Redis, scripts: Scripts, keys: Keys, queue: str) -> int:
    lock_prefix = keys.legacy_unique_pattern(queue).removesuffix("*")
    return await _move(redis, scripts, keys.legacy_task_pattern(queue),
                       [keys.tasks(queue), keys.envelopes(queue)], "tasks", [lock_prefix])


async def _move_locks(redis: Redis, scripts: Scripts, keys: Keys, queue: str) -> int:
    return await _move(redis, scripts, keys.legacy_unique_pattern(queue),
                       [keys.unique_locks(queue), keys.unique_expiry(queue)], "locks")


async def _move_key_lists(redis: Redis, scripts: Scripts, keys: Keys, queue: str) -> int:
    return await _move(
        redis, scripts, keys.legacy_key_pending_pattern(queue),
        [keys.flow(queue), keys.key_pending(queue), keys.key_position(queue)], "keylists")


async def _move(
    redis: Redis, scripts: Scripts, pattern: str, targets: list[str], kind: str,
    extra: Sequence[ScriptArg] = (),
) -> int:
    """Move every old key matching ``pattern`` (``prefix*``) into ``targets`` with
    ``migrate_layout.lua`` in mode ``kind``, a chunk per call; the number moved. The script gets
    each old key and its name without the prefix (a task id, a digest, a concurrency key)."""
    prefix = pattern.removesuffix("*")
    moved = 0
    async for chunk in _scan(redis, pattern):
        names: list[ScriptArg] = [name.removeprefix(prefix) for name in chunk]
        moved += int(await scripts.call("migrate_layout", [*targets, *chunk],
                                        [kind, *names, *extra]))
    return moved


async def _scan(redis: Redis, pattern: str) -> AsyncIterator[list[str]]:
    """Key names matching ``pattern``, CHUNK at a time (a name may come twice: SCAN's
    guarantee; the moves are idempotent)."""
    batch: list[str] = []
    async for name in redis.scan_iter(match=pattern, count=_SCAN_COUNT):
        batch.append(as_text(name))
        if len(batch) >= CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch
