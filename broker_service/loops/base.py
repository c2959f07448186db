"""The shape every background loop shares: start, stop, and one ``tick`` at a time.

A tick returns how long the loop may sleep before the next one; :meth:`BackgroundLoop.poke`
cuts a sleep short (e.g. when a lease expiring sooner than planned was just granted). Errors
are retried after a short pause, never fatal; a Redis outage is a warning, anything else an
error with its traceback (a bug must not pass for an outage). Loops are safe in every replica
at once because each tick is a set of atomic scripts.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from abc import ABC, abstractmethod

import structlog
from redis.exceptions import RedisError

from leasq_broker.errors import StorageUnavailable
from leasq_broker.observability import metrics

log = structlog.get_logger(__name__)

ERROR_PAUSE_S = 1.0


class BackgroundLoop(ABC):
    """Runs :meth:`tick` until stopped."""

    name = "loop"

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None
        self._poked = asyncio.Event()
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"leasq-{self.name}")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def poke(self) -> None:
        """Run the next tick now."""
        self._poked.set()

    @abstractmethod
    async def tick(self) -> float:
        """Do one round of work; return seconds until the next round is needed."""

    async def _run(self) -> None:
        due: float | None = None  # when the tick about to run was planned (monotonic)
        while not self._stopping:
            if due is not None:  # how late it runs: event-loop stalls, a slow Redis reply
                metrics.loop_lag(self.name, max(0.0, time.monotonic() - due))
            self._poked.clear()
            try:
                pause = await self.tick()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, StorageUnavailable) as error:  # Redis out of reach
                log.warning("background loop failed; retrying", loop=self.name, error=repr(error))
                pause = ERROR_PAUSE_S
            except Exception:  # a bug, not an outage: say so with its traceback, and go on
                log.exception("background loop raised; retrying", loop=self.name)
                pause = ERROR_PAUSE_S
            # asyncio.timeout, unlike wait_for on 3.11, never swallows a cancellation that
            # races with the timeout: stop() must always end the loop.
            due = time.monotonic() + max(pause, 0.0)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(pause, 0.0)):
                    await self._poked.wait()
            if self._poked.is_set():
                due = time.monotonic()  # woken early on purpose: due now
