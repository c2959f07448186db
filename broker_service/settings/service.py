"""The queue-settings use case: GetQueueSettings and UpdateQueueSettings."""

from __future__ import annotations

from leasq_broker import validation as v
from leasq_broker.settings.models import QueueSettings, QueueSettingsUpdate
from leasq_broker.settings.store import QueueSettingsStore


class QueueSettingsService:
    """Validates and applies settings; the scripts read them from Redis on their next call,
    so every broker replica applies a change at once."""

    def __init__(self, store: QueueSettingsStore) -> None:
        self._store = store

    async def get(self, queue: str) -> QueueSettings:
        return await self._store.get(v.queue_name("queue", queue))

    async def update(self, queue: str, update: QueueSettingsUpdate) -> QueueSettings:
        v.queue_name("queue", queue)
        update.validate("settings")
        return await self._store.update(queue, update)
