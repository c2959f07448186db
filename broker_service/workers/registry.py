"""Workers as the broker sees them through their Lease and Heartbeat calls."""

from __future__ import annotations

from redis.asyncio import Redis

from leasq_broker.clock import Clock
from leasq_broker.keys import Keys


class WorkerRegistry:
    """Records workers from the calls they make; lists them; carries operators' commands."""

    def __init__(self, redis: Redis, keys: Keys, clock: Clock) -> None:
        self._redis = redis
        self._keys = keys
        self._clock = clock
