"""Moves due SCHEDULED and RETRY tasks to PENDING, driven by the forward due index.

Lease calls already forward due tasks of the queues they lease from; this loop is what keeps
queues nobody leases from (and Inspect counts) right, and what wakes waiting Leases when a
retry falls due (the forward script publishes a wake-up while a Lease waits on the queue).
Each tick reads only the queues whose earliest due time has come (see :mod:`.due`). It sleeps
until the earliest instant in the index, at most a second (instants filed by other replicas
are seen within that), and is poked when this broker files a sooner one (a Nack's retry).
"""

from __future__ import annotations

from leasq_broker.clock import Clock
from leasq_broker.loops.base import BackgroundLoop
from leasq_broker.loops.due import DueIndex, pause_until
from leasq_broker.store import TaskStore

BATCH = 1000
QUEUES_PER_TICK = 500
MAX_SLEEP_S = 1.0
# Wake a hair after the due time, so a timer that fires early does not find it in the future.
AFTER_DUE_S = 0.001


class Forwarder(BackgroundLoop):
    name = "forwarder"

    def __init__(self, store: TaskStore, clock: Clock, index: DueIndex) -> None:
        super().__init__()
        self._store = store
        self._clock = clock
        self._index = index
        self._kind = "forward"
        self._wake_at_ms = 0

    def note_due(self, due_ms: int) -> None:
        """A task falls due at ``due_ms`` (filed by this broker): wake in time for it."""
        if due_ms < self._wake_at_ms:
            self._wake_at_ms = due_ms
            self.poke()

    async def tick(self) -> float:
        now = self._clock.now_ms()
        due = await self._index.due(self._kind, now, QUEUES_PER_TICK)
        if due.queues:
            await self._store.forward(due.queues, now, BATCH)
            self._wake_at_ms = now
            return 0.0  # re-read: the script re-filed each queue at its next instant
        pause = pause_until(due.earliest_ms, now, MAX_SLEEP_S, after_s=AFTER_DUE_S)
        self._wake_at_ms = now + int(pause * 1000)
        return pause
