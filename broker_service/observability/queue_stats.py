"""Per-queue gauges, read from Redis when Prometheus scrapes.

Queue sizes change with every call, in every broker replica: counting them as they happen
would be wrong across replicas and costly on the hot path. They are read at scrape time
instead, like GetQueueStats does (the same keys as ``TaskReader.queue_counts``), for every
known queue in one pipelined round trip (one read-only script call per queue, each touching
only its queue's keys so that it stays within one Redis Cluster slot), after one SMEMBERS of
the queue index. A snapshot is kept for ``ttl_s`` (1 s): scrapes that come together (several
Prometheus servers, a dashboard) share one read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.asyncio import Redis
from redis.exceptions import NoScriptError, RedisError

from leasq_broker.keys import Keys
from leasq_broker.store import as_text

log = structlog.get_logger(__name__)

SNAPSHOT_TTL_S = 1.0
STATES = ("pending", "scheduled", "retry", "active", "archived", "completed", "aggregating")
# One queue's numbers, read (never written) in one call; inline rather than a lua/*.lua file,
# which the transition loader would load as a transition.
_SOURCE = """
-- queue_stats: one queue's numbers for /metrics, read (never written) in one call.
-- KEYS[1] paused   KEYS[2] pending list   KEYS[3] scheduled   KEYS[4] retry   KEYS[5] active
-- KEYS[6] archived   KEYS[7] completed   KEYS[8] processed total   KEYS[9] failed total
-- KEYS[10] aggregating counter
-- ARGV[1] task key prefix
-- Returns: {paused, pending, scheduled, retry, active, archived, completed, processed, failed,
--           aggregating, pending-since ms of the next task to lease or -1}
local oldest = redis.call('LINDEX', KEYS[2], -1)
local since = -1
if oldest then
  local na = redis.call('HGET', ARGV[1] .. oldest, 'na')
  if na then since = tonumber(na) end
end
return {
  redis.call('EXISTS', KEYS[1]), redis.call('LLEN', KEYS[2]), redis.call('ZCARD', KEYS[3]),
  redis.call('ZCARD', KEYS[4]), redis.call('ZCARD', KEYS[5]), redis.call('ZCARD', KEYS[6]),
  redis.call('ZCARD', KEYS[7]), tonumber(redis.call('GET', KEYS[8]) or '0'),
  tonumber(redis.call('GET', KEYS[9]) or '0'), tonumber(redis.call('GET', KEYS[10]) or '0'),
  since,
}
"""


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    """One queue's numbers at one instant."""

    queue: str
    paused: bool
    tasks: dict[str, int]
    processed: int
    failed: int
    latency_s: float


def _snapshot(queue: str, reply: list[Any], now_ms: int) -> QueueSnapshot:
    (paused, pending, scheduled, retry, active, archived, completed, processed, failed,
     aggregating, since) = (int(v) for v in reply)  # fmt: skip
    counts = (pending, scheduled, retry, active, archived, completed, aggregating)
    latency = max(0, now_ms - since) / 1000 if since >= 0 else 0.0
    return QueueSnapshot(queue, bool(paused), dict(zip(STATES, counts, strict=True)),
                         processed, failed, latency)  # fmt: skip


class QueueStats(Collector):
    """A prometheus-client collector of per-queue gauges; :meth:`refresh` before collecting."""

    def __init__(self, redis: Redis, keys: Keys, now_ms: Callable[[], int],
                 ttl_s: float = SNAPSHOT_TTL_S) -> None:  # fmt: skip
        self._redis = redis
        self._keys = keys
        self._now_ms = now_ms
        self._ttl_s = ttl_s
        self._sha: str | None = None
        self._snapshots: list[QueueSnapshot] = []
        self._ok = False
        self._taken_at = float("-inf")
        self._reading: asyncio.Future[None] | None = None

    async def refresh(self) -> None:
        """Read every queue unless the last snapshot is younger than ``ttl_s``; callers that
        arrive while a read is running wait for that read."""
        if time.monotonic() - self._taken_at < self._ttl_s:
            return
        if self._reading is None:
            self._reading = asyncio.ensure_future(self._read())
            self._reading.add_done_callback(self._done_reading)
        await asyncio.shield(self._reading)

    def _done_reading(self, _: asyncio.Future[None]) -> None:
        self._reading = None

    async def _read(self) -> None:
        try:
            queues = sorted(as_text(m) for m in await self._redis.smembers(self._keys.queues()))
            replies = await self._pipeline(queues)
        except RedisError as error:
            log.warning("queue metrics not read: redis unavailable", error=repr(error))
            self._ok = False
            self._snapshots = []
        else:
            now = self._now_ms()
            self._snapshots = [_snapshot(q, r, now) for q, r in zip(queues, replies, strict=True)]
            self._ok = True
        self._taken_at = time.monotonic()

    async def _pipeline(self, queues: list[str]) -> list[Any]:
        if not queues:
            return []
        if self._sha is None:
            self._sha = await self._redis.script_load(_SOURCE)
        try:
            return await self._send(queues, self._sha)
        except NoScriptError:  # Redis restarted or SCRIPT FLUSH: load it again, once
            self._sha = await self._redis.script_load(_SOURCE)
            return await self._send(queues, self._sha)

    async def _send(self, queues: list[str], sha: str) -> list[Any]:
        k = self._keys
        pipe = self._redis.pipeline(transaction=False)
        for q in queues:
            keys = (k.paused(q), k.pending(q), k.scheduled(q), k.retry(q), k.active(q),
                    k.archived(q), k.completed(q), k.processed(q), k.failed(q),
                    k.aggregating(q))  # fmt: skip
            pipe.evalsha(sha, len(keys), *keys, k.task_prefix(q))
        return list(await pipe.execute())

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("leasq_queue_stats_up",
                               "1 when the last read of the queue numbers from Redis succeeded")
        up.add_metric([], 1.0 if self._ok else 0.0)
        yield up
        tasks = GaugeMetricFamily("leasq_queue_tasks", "Tasks in a queue by state",
                                  labels=["queue", "state"])
        latency = GaugeMetricFamily(
            "leasq_queue_latency_seconds",
            "Age of the next pending task to lease (0 when none is pending)", labels=["queue"])
        paused = GaugeMetricFamily("leasq_queue_paused", "1 when the queue is paused",
                                   labels=["queue"])
        processed = CounterMetricFamily(
            "leasq_queue_processed", "Attempts finished in the queue (succeeded or failed), "
            "as stored in Redis: shared by every broker replica", labels=["queue"])
        failed = CounterMetricFamily(
            "leasq_queue_failed", "Attempts failed in the queue, as stored in Redis",
            labels=["queue"])
        for snap in self._snapshots:
            for state, count in snap.tasks.items():
                tasks.add_metric([snap.queue, state], count)
            latency.add_metric([snap.queue], snap.latency_s)
            paused.add_metric([snap.queue], 1.0 if snap.paused else 0.0)
            processed.add_metric([snap.queue], snap.processed)
            failed.add_metric([snap.queue], snap.failed)
        yield from (tasks, latency, paused, processed, failed)
