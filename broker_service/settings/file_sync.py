"""Applies the ``--queue-settings-file`` at start, then again whenever the file changes.

Every queue's entry is converted and validated before any is written, so a bad file writes
nothing. At start a bad file stops the broker (:class:`QueueSettingsFileError`, naming the
queue and the field); later, a bad edit is logged and the stored settings stay as they were.
The file is watched as the schedules file is (:mod:`leasq_broker.watched_file`): saving it is
enough. Queues and fields the file does not name are left as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import structlog

from leasq.v1 import inspect_service_pb2 as pb
from leasq_broker import validation as v
from leasq_broker.errors import InvalidField
from leasq_broker.settings import file as settings_file
from leasq_broker.settings.file import QueueSettingsFileError
from leasq_broker.settings.models import QueueSettingsUpdate
from leasq_broker.settings.service import QueueSettingsService
from leasq_broker.watched_file import WatchedFile

log = structlog.get_logger(__name__)

# UpdateQueueSettings' own converter (the edge's), so the file and the RPC read fields alike.
ToUpdate = Callable[[pb.UpdateQueueSettingsRequest], QueueSettingsUpdate]


class QueueSettingsFileSync(WatchedFile):
    """Applies one queue-settings file through the settings use case."""

    what = "queue settings file"
    refusal = QueueSettingsFileError

    def __init__(self, path: Path, settings: QueueSettingsService, to_update: ToUpdate) -> None:
        super().__init__(path)
        self._settings = settings
        self._to_update = to_update

    async def apply(self) -> None:
        """Read, check and apply the file; raises QueueSettingsFileError, writing nothing."""
        entries, where = settings_file.load(self._path)
        updates: list[tuple[str, QueueSettingsUpdate]] = []
        for entry in entries:
            try:
                # The use case's own checks, run on every entry before anything is written.
                v.queue_name("queue", entry.request.queue)
                update = self._to_update(entry.request)
                update.validate("settings")
            except InvalidField as error:
                raise settings_file.refusal(where, entry.index, error) from error
            updates.append((entry.request.queue, update))
        for queue, update in updates:
            await self._settings.update(queue, update)
        log.info("queue settings file applied", path=str(self._path), queues=len(updates))
