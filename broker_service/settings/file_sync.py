"""Applies the ``--queue-settings-file`` at start, then again whenever the file changes.

Every queue's entry is converted and validated before any is written, so a bad file writes
nothing. At start a bad file stops the broker (:class:`QueueSettingsFileError`, naming the
queue and the field); later, a bad edit is logged and the stored settings stay as they were.
The file's directory is watched (editors and config management replace files by rename), as
for the schedules file: saving the file is enough. Queues and fields the file does not name
are left as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from pathlib import Path

import structlog
import watchfiles

from leasq.v1 import inspect_service_pb2 as pb
from leasq_broker import validation as v
from leasq_broker.errors import InvalidField
from leasq_broker.settings import file as settings_file
from leasq_broker.settings.file import QueueSettingsFileError
from leasq_broker.settings.models import QueueSettingsUpdate
from leasq_broker.settings.service import QueueSettingsService

log = structlog.get_logger(__name__)

# UpdateQueueSettings' own converter (the edge's), so the file and the RPC read fields alike.
ToUpdate = Callable[[pb.UpdateQueueSettingsRequest], QueueSettingsUpdate]


class QueueSettingsFileSync:
    """Applies one queue-settings file through the settings use case."""

    def __init__(self, path: Path, settings: QueueSettingsService, to_update: ToUpdate) -> None:
        self._path = path
        self._watched = str(path.resolve())
        self._settings = settings
        self._to_update = to_update
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

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

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="leasq-queue-settings-file")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _watch(self) -> None:
        folder = os.path.dirname(self._watched)
        async for changes in watchfiles.awatch(folder, stop_event=self._stop, debounce=200,
                                               recursive=False):
            if not any(changed == self._watched for _, changed in changes):
                continue
            try:
                await self.apply()
            except QueueSettingsFileError as error:
                log.error("queue settings file refused; the stored settings are unchanged",
                          path=str(self._path), error=str(error))
            except Exception as error:  # Redis down: the next save applies it again
                log.warning("queue settings file not applied", path=str(self._path),
                            error=repr(error))
