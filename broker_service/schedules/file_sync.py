"""Keeps the stored schedules equal to the ``--schedules`` file: at start, then on change
(see :mod:`leasq_broker.watched_file`)."""

from __future__ import annotations

from pathlib import Path

import structlog

from leasq_broker.schedules import file as schedule_file
from leasq_broker.schedules.file import ScheduleFileError
from leasq_broker.schedules.service import Schedules, SyncRefused
from leasq_broker.watched_file import WatchedFile

log = structlog.get_logger(__name__)


class ScheduleFileSync(WatchedFile):
    """Applies one schedules file to the store."""

    what = "schedules file"
    refusal = ScheduleFileError

    def __init__(self, path: Path, schedules: Schedules) -> None:
        super().__init__(path)
        self._schedules = schedules

    async def apply(self) -> None:
        """Read, check and apply the file; raises ScheduleFileError, writing nothing then."""
        entries = schedule_file.load(self._path)
        try:
            upserted, deleted = await self._schedules.sync([e.definition for e in entries])
        except SyncRefused as refused:
            raise schedule_file.refusal(self._path, refused.index, refused.error) from refused
        log.info("schedules file applied", path=str(self._path), schedules=upserted,
                 deleted=deleted)
