"""Stops attempts at their attempt deadline, with one timer for all of them.

A per-attempt ``asyncio.timeout`` costs a timer, a reschedule and a context manager for every
task, nearly always for nothing (the default timeout is 30 minutes). Here one timer is armed for
the earliest deadline. Tasks of one queue share a timeout, so deadlines nearly always arrive in
order: those go to the end of a deque (O(1)), and attempts that finished are dropped from its
front as new ones come, since they also finish about in the order they started. Only a deadline
earlier than the last one watched goes to a heap. Finished attempts are skipped when they come
up, and both are compacted when they hold mostly finished ones (e.g. behind one long attempt).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque
from collections.abc import Callable

from leasq_worker.leases import HeldLease

_MIN_COMPACT = 1024


class Deadlines:
    """Calls ``on_due(held)`` for each still-running attempt when its deadline passes."""

    def __init__(self, on_due: Callable[[HeldLease], None]) -> None:
        self._on_due = on_due
        self._queue: deque[tuple[float, HeldLease]] = deque()  # deadlines in order
        self._heap: list[tuple[float, int, HeldLease]] = []  # the out-of-order ones
        self._order = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._compact_at = _MIN_COMPACT

    def watch(self, held: HeldLease) -> None:
        """Stop ``held``'s attempt at ``held.deadline`` (if it has one) unless it ended before."""
        deadline = held.deadline
        if deadline is None:
            return
        queue = self._queue
        while queue and not _running(queue[0][1]):
            queue.popleft()
        if not queue or deadline >= queue[-1][0]:
            queue.append((deadline, held))
        else:
            heapq.heappush(self._heap, (deadline, next(self._order), held))
        if len(queue) + len(self._heap) >= self._compact_at:
            self._compact()
        timer = self._timer
        if timer is None or deadline < timer.when():
            self._arm()

    def close(self) -> None:
        """Disarm the timer (shutdown)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _earliest(self) -> float | None:
        if self._queue and self._heap:
            return min(self._queue[0][0], self._heap[0][0])
        if self._queue:
            return self._queue[0][0]
        return self._heap[0][0] if self._heap else None

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        earliest = self._earliest()
        if earliest is not None:
            self._timer = asyncio.get_running_loop().call_at(earliest, self._fire)

    def _fire(self) -> None:
        now = asyncio.get_running_loop().time()
        due: list[HeldLease] = []
        while self._queue and self._queue[0][0] <= now:
            due.append(self._queue.popleft()[1])
        while self._heap and self._heap[0][0] <= now:
            due.append(heapq.heappop(self._heap)[2])
        for held in due:
            if _running(held):
                self._on_due(held)
        self._timer = None
        self._arm()

    def _compact(self) -> None:
        self._queue = deque(entry for entry in self._queue if _running(entry[1]))
        self._heap = [entry for entry in self._heap if _running(entry[2])]
        heapq.heapify(self._heap)
        self._compact_at = max(_MIN_COMPACT, 2 * (len(self._queue) + len(self._heap)))


def _running(held: HeldLease) -> bool:
    return held.runner is not None and not held.runner.done()
