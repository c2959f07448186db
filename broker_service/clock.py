"""One clock for every broker replica.

Task times are compared across replicas (a lease granted by one broker is reclaimed by another),
so the broker uses Redis' clock: at start it measures the offset between Redis ``TIME`` and the
local clock and then reads the local clock plus that offset, without a round trip per call.
Tests inject :class:`ManualClock`.
"""

from __future__ import annotations

import time
from typing import Protocol

from redis.asyncio import Redis


class Clock(Protocol):
    """Milliseconds since the Unix epoch, agreed by all replicas."""

    def now_ms(self) -> int: ...


class RedisClock:
    """Local monotonic-backed wall clock corrected to Redis ``TIME``."""

    def __init__(self) -> None:
        self._offset_ms = 0.0

    async def sync(self, redis: Redis) -> None:
        """Measure the offset to Redis' clock, halving the round trip as its uncertainty."""
        before = time.time()
        seconds, micros = await redis.time()
        after = time.time()
        redis_ms = seconds * 1000 + micros / 1000
        self._offset_ms = redis_ms - (before + after) * 500

    def now_ms(self) -> int:
        return int(time.time() * 1000 + self._offset_ms)


class ManualClock:
    """A clock that moves only when told: for tests of time-dependent transitions."""

    def __init__(self, now_ms: int) -> None:
        self._now_ms = now_ms

    def now_ms(self) -> int:
        return self._now_ms

    def advance(self, ms: int) -> None:
        self._now_ms += ms
