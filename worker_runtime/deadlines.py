"""Stops attempts at their attempt deadline, with one timer for all of them.

A per-attempt ``asyncio.timeout`` costs a timer, a reschedule and a context manager for every
task, nearly always for nothing (the default timeout is 30 minutes). Here deadlines sit in one
heap and a single timer is armed for the earliest; finished attempts are skipped when they come
up, and the heap is compacted when it holds mostly finished ones.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable

from leasq_worker.leases import HeldLease

_MIN_COMPACT = 1024


class Deadlines:
    """Calls ``on_due(held)`` for each still-running attempt when its deadline passes."""

    def __init__(self, on_due: Callable[[HeldLease], None]) -> None:
        self._on_due = on_due
        self._heap: list[tuple[float, int, HeldLease]] = []
        self._order = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._compact_at = _MIN_COMPACT

    def watch(self, held: HeldLease) -> None:
        """Stop ``held``'s attempt at ``held.deadline`` (if it has one) unless it ended before."""
        if held.deadline is None:
            return
        heapq.heappush(self._heap, (held.deadline, next(self._order), held))
        if len(self._heap) >= self._compact_at:
            self._compact()
        if self._timer is None or held.deadline < self._timer.when():
            self._arm()

    def close(self) -> None:
        """Disarm the timer (shutdown)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        if self._heap:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_at(self._heap[0][0], self._fire)

    def _fire(self) -> None:
        now = asyncio.get_running_loop().time()
        while self._heap and self._heap[0][0] <= now:
            held = heapq.heappop(self._heap)[2]
            if _running(held):
                self._on_due(held)
        self._timer = None
        self._arm()

    def _compact(self) -> None:
        self._heap = [entry for entry in self._heap if _running(entry[2])]
        heapq.heapify(self._heap)
        self._compact_at = max(_MIN_COMPACT, 2 * len(self._heap))


def _running(held: HeldLease) -> bool:
    return held.runner is not None and not held.runner.done()
