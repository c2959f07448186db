"""Returns tasks of crashed workers: expired leases go back to PENDING as soon as they expire.

Driven by the reclaim due index (each queue filed at its earliest lease expiry by the lease
script, see :mod:`.due`): a tick reads only the queues whose expiry has come. The loop sleeps
until the earliest expiry in the index (at most a second, so leases granted by other replicas
are never missed for long), and is poked when this broker grants a lease that expires sooner
than the loop planned to wake.
"""

from __future__ import annotations

import structlog

from leasq_broker.clock import Clock
from leasq_broker.loops.base import BackgroundLoop
from leasq_broker.loops.due import DueIndex, pause_until
from leasq_broker.observability import metrics
from leasq_broker.store import TaskStore

log = structlog.get_logger(__name__)

BATCH = 1000
QUEUES_PER_TICK = 500
MAX_SLEEP_S = 1.0
# Wake a hair after expiry, so the expired lease is strictly in the past for the script.
AFTER_EXPIRY_S = 0.002


class Reclaimer(BackgroundLoop):
    name = "reclaimer"

    def __init__(self, store: TaskStore, clock: Clock, index: DueIndex) -> None:
        super().__init__()
        self._store = store
        self._clock = clock
        self._index = index
        self._kind = "reclaim"
        self._wake_at_ms = 0

    def note_lease(self, expires_ms: int) -> None:
        """A lease expiring at ``expires_ms`` was granted: wake in time for it."""
        if expires_ms < self._wake_at_ms:
            self._wake_at_ms = expires_ms
            self.poke()

    async def tick(self) -> float:
        now = self._clock.now_ms()
        due = await self._index.due(self._kind, now, QUEUES_PER_TICK)
        if due.queues:
            replies = await self._store.reclaim(due.queues, now, BATCH)
            for queue, (returned, archived, _) in zip(due.queues, replies, strict=True):
                if returned or archived:
                    metrics.leases_reclaimed(queue, returned, archived)
                    log.info("expired leases reclaimed", queue=queue, returned=returned,
                             archived_as_poison=archived)
            self._wake_at_ms = now
            return 0.0  # re-read: the script re-filed each queue at its next expiry
        pause = pause_until(due.earliest_ms, now, MAX_SLEEP_S, after_s=AFTER_EXPIRY_S)
        self._wake_at_ms = now + int(pause * 1000)
        return pause
