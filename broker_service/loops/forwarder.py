"""Moves due SCHEDULED and RETRY tasks to PENDING.

Lease calls already forward due tasks of the queues they lease from, and long polls wake at the
earliest due time, so this loop is what keeps queues nobody leases from (and Inspect counts)
right. It sleeps until the earliest due task, at most a second.
"""

from __future__ import annotations

from leasq_broker.clock import Clock
from leasq_broker.loops.base import BackgroundLoop
from leasq_broker.store import TaskStore

BATCH = 1000
MAX_SLEEP_S = 1.0


class Forwarder(BackgroundLoop):
    name = "forwarder"

    def __init__(self, store: TaskStore, clock: Clock) -> None:
        super().__init__()
        self._store = store
        self._clock = clock

    async def tick(self) -> float:
        queues = await self._store.known_queues()
        if not queues:
            return MAX_SLEEP_S
        now = self._clock.now_ms()
        replies = await self._store.forward(queues, now, BATCH)
        if any(moved >= BATCH for moved, _ in replies):
            return 0.0
        upcoming = [due for _, due in replies if due >= 0]
        if not upcoming:
            return MAX_SLEEP_S
        return min(MAX_SLEEP_S, max(0.0, (min(upcoming) - now) / 1000))
