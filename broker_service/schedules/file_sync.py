"""Keeps the stored schedules equal to the ``--schedules`` file: at start, then on change.

At start a bad file stops the broker (:class:`ScheduleFileError`); later, a bad edit is logged
and the schedules stay as they were. The file's directory is watched (editors and config
management replace files by rename), so saving the file is enough: no signal is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

import structlog
import watchfiles

from leasq_broker.schedules import file as schedule_file
from leasq_broker.schedules.file import ScheduleFileError
from leasq_broker.schedules.service import Schedules, SyncRefused

log = structlog.get_logger(__name__)


class ScheduleFileSync:
    """Applies one schedules file to the store."""

    def __init__(self, path: Path, schedules: Schedules) -> None:
        self._path = path
        self._watched = str(path.resolve())
        self._schedules = schedules
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def apply(self) -> None:
        """Read, check and apply the file; raises ScheduleFileError, writing nothing then."""
        entries = schedule_file.load(self._path)
        try:
            upserted, deleted = await self._schedules.sync([e.definition for e in entries])
        except SyncRefused as refused:
            raise schedule_file.refusal(self._path, refused.index, refused.error) from refused
        log.info("schedules file applied", path=str(self._path), schedules=upserted,
                 deleted=deleted)

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="leasq-schedules-file")

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
            except ScheduleFileError as error:
                log.error("schedules file refused; the stored schedules are unchanged",
                          path=str(self._path), error=str(error))
            except Exception as error:  # Redis down: the next save applies it again
                log.warning("schedules file not applied", path=str(self._path),
                            error=repr(error))
