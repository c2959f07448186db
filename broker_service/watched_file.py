"""A configuration file applied at start and again whenever it changes (the schedules file,
the queue-settings file).

The file's directory is watched, not the file: editors and config management replace files by
rename, so saving the file is enough and no signal is needed. At start a bad file stops the
broker (the subclass's ``apply`` raises); later, a bad edit is logged and what is stored stays
as it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

import structlog
import watchfiles

log = structlog.get_logger(__name__)


class WatchedFile:
    """Runs :meth:`apply` again on every save of ``path``; subclasses say how to apply it."""

    #: What the file is, for logs and the task name, e.g. "schedules file".
    what = "file"
    #: What :meth:`apply` raises for a file it refuses (nothing was written then).
    refusal: type[Exception] = ValueError

    def __init__(self, path: Path) -> None:
        self._path = path
        self._watched = str(path.resolve())
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def apply(self) -> None:
        """Read, check and apply the file; raises :attr:`refusal`, writing nothing then."""
        raise NotImplementedError

    def start(self) -> None:
        name = "leasq-" + self.what.replace(" ", "-")
        self._task = asyncio.create_task(self._watch(), name=name)

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
            except self.refusal as error:
                log.error(f"{self.what} refused; what is stored is unchanged",
                          path=str(self._path), error=str(error))
            except Exception as error:  # Redis down: the next save applies it again
                log.warning(f"{self.what} not applied", path=str(self._path),
                            error=repr(error))
