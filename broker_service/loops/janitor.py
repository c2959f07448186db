"""Deletes completed tasks past their retention and trims the archive by age and size.

Driven by the janitor due index (see :mod:`.due`): Ack files a queue at its earliest completed
expiry, every archiving script files it at once (its archive may have outgrown the size cap),
and the janitor script re-files it at its next expiry. Nothing waits on this work, so the loop
looks at most every ``MIN_SLEEP_S`` (a queue archiving all the time costs one visit per look)
and at least every ``INTERVAL_S`` (instants filed by other replicas).
"""

from __future__ import annotations

from leasq_broker.clock import Clock
from leasq_broker.loops.base import BackgroundLoop
from leasq_broker.loops.due import DueIndex, pause_until
from leasq_broker.store import TaskStore

BATCH = 1000
QUEUES_PER_TICK = 500
INTERVAL_S = 5.0
MIN_SLEEP_S = 1.0


class Janitor(BackgroundLoop):
    name = "janitor"

    def __init__(
        self, store: TaskStore, clock: Clock, index: DueIndex, *,
        archive_max_age_ms: int, archive_max_size: int,
    ) -> None:
        super().__init__()
        self._store = store
        self._clock = clock
        self._index = index
        self._kind = "janitor"
        self._archive_max_age_ms = archive_max_age_ms
        self._archive_max_size = archive_max_size

    async def tick(self) -> float:
        now = self._clock.now_ms()
        due = await self._index.due(self._kind, now, QUEUES_PER_TICK)
        if due.queues:
            replies = await self._store.clean(
                due.queues, now, archive_cutoff_ms=now - self._archive_max_age_ms,
                archive_max=self._archive_max_size, limit=BATCH,
            )
            full = len(due.queues) >= QUEUES_PER_TICK
            if full or any(done >= BATCH or old >= BATCH for done, old in replies):
                return 0.0
            return MIN_SLEEP_S
        return max(MIN_SLEEP_S, pause_until(due.earliest_ms, now, INTERVAL_S))
