"""Per-queue gauges, read from Redis when Prometheus scrapes.

Queue sizes change with every call, in every broker replica: counting them as they happen
would be wrong across replicas and costly on the hot path. They are read at scrape time
instead, with what GetQueueStats and ListQueues use (:meth:`TaskReader.many_queue_counts`:
one read-only script call per queue, each touching only its queue's keys, all queues in one
pipelined round trip), after one SMEMBERS of the queue index. A snapshot is kept for
``ttl_s`` (1 s): scrapes that come together (several Prometheus servers, a dashboard) share
one read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from leasq_broker.errors import StorageUnavailable
from leasq_broker.models import QueueCounts
from leasq_broker.reader import TaskReader

log = structlog.get_logger(__name__)

SNAPSHOT_TTL_S = 1.0
STATES = ("pending", "scheduled", "retry", "active", "archived", "completed", "aggregating")


class QueueStats(Collector):
    """A prometheus-client collector of per-queue gauges; :meth:`refresh` before collecting."""

    def __init__(self, reader: TaskReader, now_ms: Callable[[], int],
                 ttl_s: float = SNAPSHOT_TTL_S) -> None:  # fmt: skip
        self._reader = reader
        self._now_ms = now_ms
        self._ttl_s = ttl_s
        self._counts: list[QueueCounts] = []
        self._read_at_ms = 0
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
            now = self._now_ms()
            self._counts = await self._reader.many_queue_counts(
                await self._reader.queue_names(), now)
            self._read_at_ms = now
            self._ok = True
        except (RedisError, OSError, StorageUnavailable) as error:
            log.warning("queue metrics not read: redis unavailable", error=repr(error))
            self._ok = False
            self._counts = []
        self._taken_at = time.monotonic()

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("leasq_queue_stats_up",
                               "1 when the last read of the queue numbers from Redis succeeded")
        up.add_metric([], 1.0 if self._ok else 0.0)
        yield up
        tasks = GaugeMetricFamily("leasq_queue_tasks", "Tasks in a queue by state",
                                  labels=["queue", "state"])
        latency = GaugeMetricFamily(
            "leasq_queue_latency_seconds", "How long the next pending task to lease has been "
            "pending (0 when none is), as GetQueueStats' latency", labels=["queue"])
        paused = GaugeMetricFamily("leasq_queue_paused", "1 when the queue is paused",
                                   labels=["queue"])
        processed = CounterMetricFamily(
            "leasq_queue_processed", "Attempts finished in the queue (succeeded or failed), "
            "as stored in Redis: shared by every broker replica", labels=["queue"])
        failed = CounterMetricFamily(
            "leasq_queue_failed", "Attempts failed in the queue, as stored in Redis",
            labels=["queue"])
        for c in self._counts:
            for state in STATES:
                tasks.add_metric([c.queue, state], getattr(c, state))
            since = c.oldest_pending_ms
            waited = max(0, self._read_at_ms - since) / 1000 if since is not None else 0.0
            latency.add_metric([c.queue], waited)
            paused.add_metric([c.queue], 1.0 if c.paused else 0.0)
            processed.add_metric([c.queue], c.processed_total)
            failed.add_metric([c.queue], c.failed_total)
        yield from (tasks, latency, paused, processed, failed)
