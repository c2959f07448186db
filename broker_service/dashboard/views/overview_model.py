"""What the overview shows, computed from the domain's counts and daily counters: one row per
queue, totals, sparklines and the data of its charts. Pure functions (no I/O)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from leasq_broker.models import QueueCounts
from leasq_broker.operations.models import DailyCounts

#: The states of a queue in the order the overview shows them.
STATES = ("pending", "active", "scheduled", "retry", "archived", "completed", "aggregating")
#: Days of the per-queue sparkline (processed per UTC day, oldest left).
SPARK_DAYS = 7
SPARK_WIDTH, SPARK_HEIGHT = 84, 20
#: Queues in the queue-size chart: the largest ones (a bar per queue stops being readable).
CHART_QUEUES = 15


@dataclass(frozen=True, slots=True)
class QueueRow:
    """One queue's line of the table."""

    counts: QueueCounts
    size: int
    latency_ms: int | None
    error_rate: float | None

    @property
    def name(self) -> str:
        return self.counts.queue

    def count(self, state: str) -> int:
        return int(getattr(self.counts, state))


#: Orders of the table: each a key of a row (ties by name).
SORTS: dict[str, Callable[[QueueRow], str | int]] = {
    "name": lambda row: row.name,
    "size": lambda row: -row.size,
    "failed": lambda row: -row.counts.failed_today,
    "latency": lambda row: -(row.latency_ms or 0),
}


@dataclass(frozen=True, slots=True)
class Totals:
    """The cards above the table: sums over every queue."""

    queues: int
    paused: int
    by_state: dict[str, int]
    processed_today: int
    failed_today: int
    error_rate: float | None
    max_latency_ms: int | None


def queue_size(c: QueueCounts) -> int:
    """Every task the queue holds, whatever its state."""
    return sum(int(getattr(c, state)) for state in STATES)


def error_rate(processed: int, failed: int) -> float | None:
    """Failed attempts per finished attempt (``processed`` counts failures too)."""
    return failed / processed if processed else None


def latency(c: QueueCounts, now_ms: int) -> int | None:
    """How long the next pending task has waited; None with nothing pending."""
    if not c.pending or c.oldest_pending_ms is None:
        return None
    return max(0, now_ms - c.oldest_pending_ms)


def sparkline(daily: DailyCounts, index: int) -> tuple[str, str]:
    """SVG polyline points of processed per day over the last SPARK_DAYS days (oldest left) of
    the ``index``-th queue of ``daily``, and the figures as a tooltip."""
    values = daily.processed[index][:SPARK_DAYS][::-1]
    dates = daily.dates[:SPARK_DAYS][::-1]
    top = max(values, default=0) or 1
    step = SPARK_WIDTH / max(1, len(values) - 1)
    scale = (SPARK_HEIGHT - 2) / top
    points = " ".join(f"{n * step:.1f},{SPARK_HEIGHT - 1 - v * scale:.1f}"
                      for n, v in enumerate(values))  # fmt: skip
    title = "processed per day: " + ", ".join(
        f"{d[5:]} {v:,}" for d, v in zip(dates, values, strict=True))
    return points, title


def rows(counts: Sequence[QueueCounts], now_ms: int) -> list[QueueRow]:
    """A row per queue, in the order given."""
    return [QueueRow(c, queue_size(c), latency(c, now_ms),
                     error_rate(c.processed_today, c.failed_today)) for c in counts]


def totals(every: Sequence[QueueRow]) -> Totals:
    by_state = {s: sum(r.count(s) for r in every) for s in STATES}
    processed = sum(r.counts.processed_today for r in every)
    failed = sum(r.counts.failed_today for r in every)
    latencies = [r.latency_ms for r in every if r.latency_ms is not None]
    return Totals(len(every), sum(r.counts.paused for r in every), by_state, processed, failed,
                  error_rate(processed, failed), max(latencies, default=None))  # fmt: skip


def select(every: list[QueueRow], needle: str, sort: str) -> list[QueueRow]:
    """The rows whose name contains ``needle`` (case-insensitive), sorted by ``sort`` (then
    by name)."""
    needle = needle.lower()
    chosen = [r for r in every if needle in r.name.lower()] if needle else every
    key = SORTS[sort]
    return sorted(chosen, key=lambda r: (key(r), r.name)) if sort != "name" else chosen


def pages(total: int, size: int) -> int:
    return max(1, math.ceil(total / size))


def history_chart(daily: DailyCounts, days: int) -> dict[str, list[int] | list[str]]:
    """Processed and failed per UTC day over the last ``days`` days, summed over every queue,
    oldest first."""
    processed = [sum(column) for column in zip(*(p[:days] for p in daily.processed),
                                                strict=True)] or [0] * days  # fmt: skip
    failed = [sum(column) for column in zip(*(f[:days] for f in daily.failed),
                                             strict=True)] or [0] * days  # fmt: skip
    return {"labels": daily.dates[:days][::-1], "processed": processed[::-1],
            "failed": failed[::-1]}  # fmt: skip


def sizes_chart(every: Sequence[QueueRow]) -> dict[str, object]:
    """Tasks per state of the CHART_QUEUES largest queues (a stacked bar each)."""
    largest = sorted(every, key=lambda r: (-r.size, r.name))[:CHART_QUEUES]
    return {"labels": [r.name for r in largest],
            "states": [[s, [r.count(s) for r in largest]] for s in STATES]}  # fmt: skip
