"""The scheduler: fires due schedule ticks in every replica, sleeping until the next one.

It sleeps until the earliest next tick in the due index (at most a second, so schedules created
through other replicas are picked up), and is poked when this replica changes a schedule. Its
cost per pass follows the number of due schedules, never the total number of schedules.
"""

from __future__ import annotations

from leasq_broker.clock import Clock
from leasq_broker.loops.base import BackgroundLoop
from leasq_broker.schedules.service import Schedules

MAX_SLEEP_S = 1.0


class Scheduler(BackgroundLoop):
    name = "scheduler"

    def __init__(self, schedules: Schedules, clock: Clock) -> None:
        super().__init__()
        self._schedules = schedules
        self._clock = clock
        self._indexed = False

    async def tick(self) -> float:
        if not self._indexed:
            await self._schedules.reindex()
            self._indexed = True
        done = await self._schedules.fire_due()
        if done.more_due:
            return 0.0
        earliest = await self._schedules.earliest_due()
        if earliest is None:
            return MAX_SLEEP_S
        return min(MAX_SLEEP_S, max(0.0, (earliest - self._clock.now_ms()) / 1000))
