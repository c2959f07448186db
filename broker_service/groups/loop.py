"""The aggregator: flushes groups when they fall due, in every replica, sleeping until the next.

It sleeps until the earliest flush instant of the queues in the aggregator's index (at most a
second, so groups created through other replicas are picked up), and is woken when an enqueue in
this replica creates a group due before that. Its cost per pass follows the queues that hold
groups, never the total number of queues.
"""

from __future__ import annotations

from leasq_broker.clock import Clock
from leasq_broker.groups.service import Groups
from leasq_broker.loops.base import BackgroundLoop

MAX_SLEEP_S = 1.0
NEVER_MS = 1 << 62


class Aggregator(BackgroundLoop):
    name = "aggregator"

    def __init__(self, groups: Groups, clock: Clock) -> None:
        super().__init__()
        self._groups = groups
        self._clock = clock
        self._wake_ms = 0

    def note_due(self, due_ms: int) -> None:
        """A group was created that is due at ``due_ms``: wake up earlier if need be."""
        if due_ms < self._wake_ms:
            self._wake_ms = due_ms
            self.poke()

    async def tick(self) -> float:
        # During the pass every new group pokes the loop: the pass may have read its queue
        # before the group was there.
        self._wake_ms = NEVER_MS
        done = await self._groups.flush_due()
        if done.more_due:
            return 0.0
        now = self._clock.now_ms()
        pause = MAX_SLEEP_S
        if done.next_due_ms is not None:
            pause = min(MAX_SLEEP_S, max(0.0, (done.next_due_ms - now) / 1000))
        self._wake_ms = now + int(pause * 1000)
        return pause
