"""Reads the live workers and the tasks each holds, for ListWorkers (a few pipelined round
trips, none per worker or per task)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from redis.asyncio import Redis

from leasq_broker.keys import Keys
from leasq_broker.store import as_text
from leasq_broker.task_records import with_envelope
from leasq_broker.workers.keys import WorkerKeys
from leasq_broker.workers.models import Command, HeldTask, WorkerMeta, WorkerRecord

_COMMANDS = {command.value: command for command in Command}
# Index entries this much older than the TTL are still checked against their registration.
CLOCK_SLACK_MS = 2000


class WorkerListing:
    """Live workers, read from their registrations and the queues' active indexes."""

    def __init__(self, redis: Redis, keys: Keys, worker_keys: WorkerKeys) -> None:
        self._redis = redis
        self._keys = keys
        self._worker_keys = worker_keys

    async def live(self, now_ms: int, ttl_ms: int) -> list[WorkerRecord]:
        """Every worker whose registration has not expired, sorted by id, with its tasks. The
        index narrows the ids to those recorded within ``ttl_ms`` (plus a slack for the clocks
        of broker and Redis); the registration hash decides, so that a worker listed is one
        whose command is still in force."""
        return await self.some(await self.live_ids(now_ms, ttl_ms))

    async def live_ids(self, now_ms: int, ttl_ms: int) -> list[str]:
        """The ids of the index recorded within ``ttl_ms`` (plus the slack), sorted: a few may
        have expired since, which :meth:`some` leaves out."""
        since = now_ms - ttl_ms - CLOCK_SLACK_MS
        raw_ids: list[Any] = await self._redis.zrange(
            self._worker_keys.index(), f"({since}", "+inf", byscore=True)
        return sorted(as_text(i) for i in raw_ids)

    async def some(self, worker_ids: Sequence[str]) -> list[WorkerRecord]:
        """These workers (those still registered), in the given order, with their tasks."""
        if not worker_ids:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for worker_id in worker_ids:
            pipe.hgetall(self._worker_keys.worker(worker_id))
        records = [_record(worker_id, raw) for worker_id, raw
                   in zip(worker_ids, await pipe.execute(), strict=True) if raw]
        held = await self._held_tasks({q for r in records for q, _ in r.queues},
                                      {r.worker_id for r in records})
        for record in records:
            tasks = held.get(record.worker_id, [])
            tasks.sort(key=lambda t: (t.leased_at_ms or 0, t.queue, t.task_id))
            record.tasks.extend(tasks)
        return records

    async def _held_tasks(self, queues: set[str], workers: set[str]
                          ) -> dict[str, list[HeldTask]]:
        """ACTIVE tasks of these queues under these workers' ids: the active indexes in one
        round trip, then the task hashes in another."""
        names = sorted(queues)
        if not names or not workers:
            return {}
        pipe = self._redis.pipeline(transaction=False)
        for queue in names:
            pipe.zrange(self._keys.active(queue), 0, -1)
        active = [(queue, as_text(task_id)) for queue, ids
                  in zip(names, await pipe.execute(), strict=True) for task_id in ids]
        if not active:
            return {}
        pipe = self._redis.pipeline(transaction=False)
        for queue, task_id in active:
            pipe.hget(self._keys.tasks(queue), task_id)
            pipe.hget(self._keys.envelopes(queue), task_id)
        replies = iter(await pipe.execute())
        held: dict[str, list[HeldTask]] = {}
        for queue, task_id in active:
            record = with_envelope(next(replies), next(replies))
            owner, state, leased_at, expires, envelope = (
                record.get(f) for f in (b"w", b"s", b"la", b"lx", b"b"))
            if owner is None or state != b"active":
                continue  # settled or gone between the two reads
            worker_id = as_text(owner)
            if worker_id in workers:
                held.setdefault(worker_id, []).append(HeldTask(
                    queue, task_id, envelope or b"", _ms(leased_at), _ms(expires)))
        return held


def _ms(value: bytes | None) -> int | None:
    return int(float(value)) if value else None


def _record(worker_id: str, raw: Mapping[Any, Any]) -> WorkerRecord:
    """A worker from its registration hash (see ``worker_touch.lua`` for the fields)."""
    f = {as_text(k): as_text(v) for k, v in raw.items()}
    meta = None
    if "p" in f:
        meta = WorkerMeta(host=f.get("h", ""), pid=int(f["p"] or 0),
                          concurrency=int(f.get("n") or 0),
                          started_at_ms=int(f["st"]) if f.get("st") else None,
                          sdk=f.get("sdk", ""))
    queues = [(str(name), int(weight)) for name, weight in json.loads(f.get("q") or "[]")]
    return WorkerRecord(
        worker_id=worker_id, meta=meta, queues=queues, strict=f.get("x") == "1",
        first_seen_ms=int(float(f.get("fs") or 0)), last_seen_ms=int(float(f.get("ls") or 0)),
        command=_COMMANDS.get(f.get("c", ""), Command.NONE),
    )
