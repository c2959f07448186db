"""Keeps the pattern index current while patterns are in use.

Every half second: check the size of the queue index (one SCARD) and re-read it when it
changed, fully every 5 s (a queue created through another broker replica is served within
about a second; the index of 100,000 queues is not re-read twice a second). Every second:
probe the queues of the patterns in use that are not already "maybe ready" for pending tasks:
this catches tasks that arrived through another replica while no Lease here was waiting (no
wake-up was published then) and tasks the forwarder moved from SCHEDULED/RETRY. With no
pattern in use the loop only sleeps.
"""

from __future__ import annotations

import time

from leasq_broker.loops.base import BackgroundLoop
from leasq_broker.patterns.index import PatternIndex

REFRESH_S = 0.5
# A queue created and another deleted within one REFRESH_S leave the index's size unchanged:
# a full read this often catches that.
FULL_REFRESH_S = 5.0
SWEEP_S = 1.0


class PatternRefresher(BackgroundLoop):
    name = "patterns"

    def __init__(self, index: PatternIndex) -> None:
        super().__init__()
        self._index = index
        self._next_sweep = 0.0
        self._next_full = 0.0

    async def tick(self) -> float:
        if not self._index.active():
            return REFRESH_S
        now = time.monotonic()
        full = now >= self._next_full
        if full:
            self._next_full = now + FULL_REFRESH_S
        await self._index.refresh_known(full=full)
        if now >= self._next_sweep:
            self._next_sweep = now + SWEEP_S
            await self._index.sweep()
        return REFRESH_S
