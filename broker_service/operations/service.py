"""The operations behind InspectService's bulk, history, search and queue calls."""

from __future__ import annotations

from redis.asyncio import Redis

from leasq_broker.clock import Clock
from leasq_broker.keys import Keys
from leasq_broker.reader import TaskReader
from leasq_broker.scripts import Scripts
from leasq_broker.store import TaskStore


class Operations:
    """History, bulk run/archive/delete, search, queue deletion, server info."""

    def __init__(self, redis: Redis, scripts: Scripts, keys: Keys, store: TaskStore,
                 reader: TaskReader, clock: Clock) -> None:
        self._redis = redis
        self._scripts = scripts
        self._keys = keys
        self._store = store
        self._reader = reader
        self._clock = clock
