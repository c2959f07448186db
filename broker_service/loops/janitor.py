"""Deletes completed tasks past their retention and trims the archive by age and size.

Nothing waits on this work, so it runs on a relaxed fixed interval.
"""

from __future__ import annotations

from leasq_broker.clock import Clock
from leasq_broker.loops.base import BackgroundLoop
from leasq_broker.store import TaskStore

BATCH = 1000
INTERVAL_S = 5.0


class Janitor(BackgroundLoop):
    name = "janitor"

    def __init__(
        self, store: TaskStore, clock: Clock, *, archive_max_age_ms: int, archive_max_size: int
    ) -> None:
        super().__init__()
        self._store = store
        self._clock = clock
        self._archive_max_age_ms = archive_max_age_ms
        self._archive_max_size = archive_max_size

    async def tick(self) -> float:
        queues = await self._store.known_queues()
        if not queues:
            return INTERVAL_S
        now = self._clock.now_ms()
        replies = await self._store.clean(
            queues, now, archive_cutoff_ms=now - self._archive_max_age_ms,
            archive_max=self._archive_max_size, limit=BATCH,
        )
        busy = any(done >= BATCH or old >= BATCH for done, old in replies)
        return 0.0 if busy else INTERVAL_S
