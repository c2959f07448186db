"""Keeps the pattern index current while patterns are in use.

Every half second: re-read the known queues (a queue created through another broker replica
is served within about a second). Every second: probe the queues of the patterns in use that
are not already "maybe ready" for pending tasks: this catches tasks that arrived through
another replica while no Lease here was waiting (no wake-up was published then) and tasks the
forwarder moved from SCHEDULED/RETRY. With no pattern in use the loop only sleeps.
"""

from __future__ import annotations

import time

from leasq_broker.loops.base import BackgroundLoop
from leasq_broker.patterns.index import PatternIndex

REFRESH_S = 0.5
SWEEP_S = 1.0


class PatternRefresher(BackgroundLoop):
    name = "patterns"

    def __init__(self, index: PatternIndex) -> None:
        super().__init__()
        self._index = index
        self._next_sweep = 0.0

    async def tick(self) -> float:
        if not self._index.active():
            return REFRESH_S
        await self._index.refresh_known()
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + SWEEP_S
            await self._index.sweep()
        return REFRESH_S
