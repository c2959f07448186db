"""Attempts by task type and outcome, and handler durations by type, counted cheaply.

prometheus-client's ``Counter.inc`` and ``Histogram.observe`` take a lock per value and walk the
buckets in Python: three locked updates per attempt, about a tenth of a no-op task's whole cost
in the worker. Here an attempt is one uncontended lock, a dict update and a bisect; the metric
families are built only when Prometheus scrapes (:meth:`AttemptCounts.collect`), which may run
on another thread (hence the lock). The exposition is what a Counter and a Histogram of the same
names would give, without the ``_created`` samples.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

TASKS = "leasq_worker_tasks"
TASKS_HELP = "Attempts run by this worker, by task type and outcome"
DURATIONS = "leasq_worker_handler_duration_seconds"
DURATIONS_HELP = "Time the handler of an attempt ran, by task type"


class AttemptCounts:
    """A prometheus-client collector of attempt counts and handler-duration histograms."""

    def __init__(self, buckets: Sequence[float]) -> None:
        self._bounds = tuple(sorted(buckets))
        self._labels = [*(repr(float(b)) for b in self._bounds), "+Inf"]
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], int] = {}
        # Per type: [sum of seconds, count in bucket 0, ..., count above the last bound].
        self._durations: dict[str, list[float]] = {}

    def add(self, task_type: str, outcome: str, seconds: float | None) -> None:
        """Count one attempt; ``seconds`` is its handler's run time (None when none ran)."""
        key = (task_type, outcome)
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1
            if seconds is None:
                return
            row = self._durations.get(task_type)
            if row is None:
                row = self._durations[task_type] = [0.0] * (len(self._bounds) + 2)
            row[0] += seconds
            row[1 + bisect.bisect_left(self._bounds, seconds)] += 1  # le: value <= bound

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily(TASKS, TASKS_HELP, labels=["type", "outcome"])
        yield HistogramMetricFamily(DURATIONS, DURATIONS_HELP, labels=["type"])

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            counts = sorted(self._counts.items())
            durations = sorted((name, list(row)) for name, row in self._durations.items())
        tasks = CounterMetricFamily(TASKS, TASKS_HELP, labels=["type", "outcome"])
        for (task_type, outcome), count in counts:
            tasks.add_metric([task_type, outcome], count)
        yield tasks
        histogram = HistogramMetricFamily(DURATIONS, DURATIONS_HELP, labels=["type"])
        for task_type, row in durations:
            cumulative: list[tuple[str, float]] = []
            total = 0.0
            for label, in_bucket in zip(self._labels, row[1:], strict=True):
                total += in_bucket
                cumulative.append((label, total))
            histogram.add_metric([task_type], cumulative, sum_value=row[0])
        yield histogram
