"""Returns tasks of crashed workers: expired leases go back to PENDING as soon as they expire.

The loop sleeps until the earliest lease expiry of all queues (at most a second, so leases
granted by other replicas are never missed for long), and is poked when this broker grants a
lease that expires sooner than the loop planned to wake.
"""

from __future__ import annotations

import structlog

from leasq_broker.clock import Clock
from leasq_broker.loops.base import BackgroundLoop
from leasq_broker.observability import metrics
from leasq_broker.store import TaskStore

log = structlog.get_logger(__name__)

BATCH = 1000
MAX_SLEEP_S = 1.0
# Wake a hair after expiry, so the expired lease is strictly in the past for the script.
AFTER_EXPIRY_S = 0.002


class Reclaimer(BackgroundLoop):
    name = "reclaimer"

    def __init__(self, store: TaskStore, clock: Clock) -> None:
        super().__init__()
        self._store = store
        self._clock = clock
        self._wake_at_ms = 0

    def note_lease(self, expires_ms: int) -> None:
        """A lease expiring at ``expires_ms`` was granted: wake in time for it."""
        if expires_ms < self._wake_at_ms:
            self._wake_at_ms = expires_ms
            self.poke()

    async def tick(self) -> float:
        queues = await self._store.known_queues()
        now = self._clock.now_ms()
        sleep_s = MAX_SLEEP_S
        if queues:
            replies = await self._store.reclaim(queues, now, BATCH)
            for queue, (returned, archived, _) in zip(queues, replies, strict=True):
                if returned or archived:
                    metrics.leases_reclaimed(queue, returned, archived)
                    log.info("expired leases reclaimed", queue=queue, returned=returned,
                             archived_as_poison=archived)
            if any(returned + archived >= BATCH for returned, archived, _ in replies):
                sleep_s = 0.0
            upcoming = [nxt for _, _, nxt in replies if nxt >= 0]
            if upcoming:
                sleep_s = min(sleep_s, max(0.0, (min(upcoming) - now) / 1000 + AFTER_EXPIRY_S))
        self._wake_at_ms = now + int(sleep_s * 1000)
        return sleep_s
