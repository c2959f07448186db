"""Workers as the broker sees them through their Lease and Heartbeat calls.

Recording. Every call records its worker in Redis (``worker_touch.lua``: a hash that expires
``ttl`` after the latest recorded call, and an index of ids), but a broker process writes a
given worker at most once per ``touch_interval`` (1 s by default): the write is started beside
the call, not awaited, so the Lease hot path gains no round trip. Only the first call of a
worker this process has not seen awaits its write, which also reads the worker's command. A
Lease that waits for tasks (long poll) records its worker again every ``wait_touch_interval``
(5 s) while it waits. So ``last_seen_at`` is at most 1 s older than the worker's latest call,
and at most 5 s older while the worker waits in a long poll; a worker is forgotten ``ttl``
(60 s) after its latest recorded call.

Commands. Each broker process keeps the command of every worker it serves in memory, so that a
Lease can answer "no tasks, you are told to stop" without asking Redis. The memory is kept
right by three means: a command given through this process is set at once; a command given
through another replica reaches this one on the notifier's pub/sub channel (a message naming
the worker), which flags the worker so that its next call, or its waiting long poll, re-reads
the command; and every recording write returns the stored command (covering a lost message
within ``touch_interval``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import structlog
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from leasq_broker.clock import Clock
from leasq_broker.errors import StorageUnavailable, WorkerNotFound
from leasq_broker.keys import Keys
from leasq_broker.notifier import Notifier
from leasq_broker.scripts import ScriptArg, Scripts
from leasq_broker.store import as_text
from leasq_broker.workers.keys import WorkerKeys, wake_name
from leasq_broker.workers.listing import WorkerListing
from leasq_broker.workers.models import Command, Sighting, WorkerRecord

log = structlog.get_logger(__name__)

T = TypeVar("T")

DEFAULT_TTL_MS = 60_000
# A worker is written at most this often per broker process (capped at a quarter of the TTL).
TOUCH_INTERVAL_S = 1.0
# ... and this often while one of its Lease calls waits for tasks.
WAIT_TOUCH_INTERVAL_S = 5.0

_COMMANDS = {command.value: command for command in Command}


@dataclass(slots=True, eq=False)
class _Local:
    """What this process remembers of one worker it serves."""

    sighting: Sighting
    # Set by the notifier when some broker gave the worker a command; ``listening`` holds the
    # notifier registration.
    flag: asyncio.Event
    listening: contextlib.ExitStack
    command: Command = Command.NONE
    # Monotonic time of the latest write started, and of the latest call.
    written_at: float = 0.0
    called_at: float = 0.0
    # Bumped whenever the command is set here, so that a write that read the command before
    # does not overwrite a newer one.
    version: int = 0
    refreshing: asyncio.Future[None] | None = None


class WorkerRegistry:
    """Records workers from the calls they make; lists them; carries operators' commands."""

    def __init__(self, redis: Redis, scripts: Scripts, keys: Keys, clock: Clock,
                 notifier: Notifier, *, ttl_ms: int = DEFAULT_TTL_MS) -> None:
        self._redis = redis
        self._scripts = scripts
        self._keys = keys
        self._worker_keys = WorkerKeys(keys.prefix)
        self._clock = clock
        self._notifier = notifier
        self._listing = WorkerListing(redis, keys, self._worker_keys)
        self.ttl_ms = ttl_ms
        self._touch_s = min(TOUCH_INTERVAL_S, ttl_ms / 4000)
        self._wait_touch_s = min(WAIT_TOUCH_INTERVAL_S, ttl_ms / 4000)
        self._local: dict[str, _Local] = {}
        self._swept_at = time.monotonic()
        self._background: set[asyncio.Task[None]] = set()

    async def stop(self) -> None:
        """Finish the recording writes in flight (a broker stops before closing Redis)."""
        if self._background:
            await asyncio.wait(list(self._background), timeout=2)
        for task in list(self._background):
            task.cancel()
        for local in self._local.values():
            local.listening.close()
        self._local.clear()

    def commanded(self, worker_id: str) -> bool:
        """Whether this worker was told to go quiet or stop (as this process knows): it gets
        no tasks, not even through an Ack's or Nack's lease_next."""
        local = self._local.get(worker_id)
        return local is not None and local.command is not Command.NONE

    async def record(self, sighting: Sighting) -> Command:
        """Note a call of a worker (written at most once per touch interval) and return the
        worker's command."""
        now = time.monotonic()
        local = self._local.get(sighting.worker_id)
        if local is None:
            local = self._adopt(sighting, now)
            await self._touch(local)
            return local.command
        # A new process under the same id, or a worker not written for a TTL (its registration,
        # and any command, may have lapsed): written before this call is answered, so that the
        # command it gets is the one of its registration as it is now.
        fresh = (_restarted(local.sighting, sighting)
                 or now - local.written_at >= self.ttl_ms / 1000)
        local.sighting = _merged(local.sighting, sighting)
        local.called_at = now
        if fresh:
            local.written_at = now
            local.version += 1
            await self._touch(local)
            return local.command
        if now - local.written_at >= self._touch_s:
            self._touch_soon(local, now)
        if local.flag.is_set():
            await self._refresh(local)
        return local.command

    async def until_commanded(self, worker_id: str, work: Awaitable[T]) -> T | Command:
        """Await ``work`` (a long-polling lease) unless the worker is given a command first:
        then cancel it and return the command. Records the worker while it waits."""
        local = self._local.get(worker_id)
        if local is None:
            return await work
        running = asyncio.ensure_future(work)
        try:
            while True:
                flagged = asyncio.ensure_future(local.flag.wait())
                done, _ = await asyncio.wait({running, flagged}, timeout=self._wait_touch_s,
                                             return_when=asyncio.FIRST_COMPLETED)
                flagged.cancel()
                if running in done:
                    return running.result()
                now = time.monotonic()
                local.called_at = now
                if local.flag.is_set():
                    await self._refresh(local)
                elif now - local.written_at >= self._wait_touch_s:
                    self._touch_soon(local, now)
                if local.command is not Command.NONE:
                    running.cancel()
                    await asyncio.wait({running})
                    if not running.cancelled() and running.exception() is None:
                        result = running.result()
                        if result:  # leased just before the cancel landed: the worker has them
                            return result
                    return local.command
        finally:
            if not running.done():
                running.cancel()
            # This call may end by another error (Redis lost while recording the worker) in
            # the turn the lease failed too: its outcome is then nobody's, not an unretrieved
            # task exception.
            running.add_done_callback(_outcome_dropped)

    async def list_workers(self) -> list[WorkerRecord]:
        """Every live worker, sorted by id, with the tasks it holds."""
        return await self._listing.live(self._clock.now_ms(), self.ttl_ms)

    async def page_workers(self, after: str, size: int) -> tuple[list[WorkerRecord], str, int]:
        """Live workers by id after ``after`` (a page of at most ``size``), the next page's
        token ("" on the last page) and how many workers the index lists as live: a page reads
        the registrations, and the active tasks of the queues, of its own workers only."""
        ids = await self._listing.live_ids(self._clock.now_ms(), self.ttl_ms)
        rest = [i for i in ids if i > after] if after else ids
        token = rest[size - 1] if len(rest) > size else ""
        return await self._listing.some(rest[:size]), token, len(ids)

    async def give_command(self, worker_id: str, command: Command) -> WorkerRecord:
        """Tell a live worker to go quiet or stop (a stop is never lowered to quiet); the
        worker as it is now. :class:`WorkerNotFound` for a worker not seen within the TTL."""
        reply = await self._scripts.call(
            "worker_command", [self._worker_keys.worker(worker_id)],
            [command.value, self._keys.notify_channel(), wake_name(worker_id)],
        )
        if not reply:
            raise WorkerNotFound(
                f"no worker {worker_id!r} called Lease or Heartbeat in the last "
                f"{self.ttl_ms / 1000:g} s; list the live ones with ListWorkers"
            )
        in_force = _COMMANDS[as_text(reply)]
        local = self._local.get(worker_id)
        if local is not None:
            self._set_command(local, in_force)
        self._notifier.wake(wake_name(worker_id))
        log.info("worker command given", worker_id=worker_id, command=in_force.value)
        records = await self._listing.some([worker_id])
        if not records:
            raise WorkerNotFound(f"worker {worker_id!r} expired just now")
        return records[0]

    def _adopt(self, sighting: Sighting, now: float) -> _Local:
        """Start remembering a worker: listen for its command wake-ups."""
        self._sweep(now)
        listening = contextlib.ExitStack()
        flag = listening.enter_context(self._notifier.listen([wake_name(sighting.worker_id)]))
        local = _Local(sighting, flag, listening, written_at=now, called_at=now)
        self._local[sighting.worker_id] = local
        return local

    def _sweep(self, now: float) -> None:
        """Forget workers that made no call here for a TTL (at most once per TTL)."""
        ttl_s = self.ttl_ms / 1000
        if now - self._swept_at < ttl_s:
            return
        self._swept_at = now
        for worker_id, local in list(self._local.items()):
            if now - local.called_at > ttl_s:
                local.listening.close()
                del self._local[worker_id]

    def _set_command(self, local: _Local, command: Command) -> None:
        local.version += 1
        if command is not local.command:
            log.info("worker command in force", worker_id=local.sighting.worker_id,
                     command=command.value or "none")
        local.command = command

    def _touch_soon(self, local: _Local, now: float) -> None:
        local.written_at = now
        task = asyncio.create_task(self._touch_logged(local))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _touch_logged(self, local: _Local) -> None:
        try:
            await self._touch(local)
        except (RedisConnectionError, RedisTimeoutError, OSError, StorageUnavailable) as error:
            # StorageUnavailable: e.g. too few replicas acknowledged the write in time
            # (--redis-min-replicas-ack during a failover); the next call records it again.
            log.warning("worker not recorded: redis unreachable or unconfirmed",
                        worker_id=local.sighting.worker_id, error=str(error))
        except Exception:
            log.exception("worker not recorded", worker_id=local.sighting.worker_id)

    async def _touch(self, local: _Local) -> None:
        """Write the worker's registration and read its command."""
        version = local.version
        s = local.sighting
        args: list[ScriptArg] = [self._clock.now_ms(), self.ttl_ms, s.worker_id]
        meta = s.meta
        if meta is None:
            args += ["0", "", "", "", "", ""]
        else:
            args += ["1", meta.host, meta.pid, meta.concurrency,
                     "" if meta.started_at_ms is None else meta.started_at_ms, meta.sdk]
        if s.queues is None:
            args += ["0", "", ""]
        else:
            args += ["1", _queues_json(s.queues), "1" if s.strict else "0"]
        keys = [self._worker_keys.worker(s.worker_id), self._worker_keys.index()]
        reply = await self._scripts.call("worker_touch", keys, args)
        if local.version == version:
            self._set_command(local, _COMMANDS.get(as_text(reply), Command.NONE))

    async def _refresh(self, local: _Local) -> None:
        """Re-read a flagged worker's command (one read, shared by concurrent callers)."""
        if local.refreshing is None:
            local.flag.clear()
            refreshing = local.refreshing = asyncio.ensure_future(self._read_command(local))
            refreshing.add_done_callback(lambda done: _refreshed(local, done))
        await asyncio.shield(local.refreshing)

    async def _read_command(self, local: _Local) -> None:
        version = local.version
        raw = await self._redis.hget(self._worker_keys.worker(local.sighting.worker_id), "c")
        if local.version == version:
            self._set_command(local, _COMMANDS.get(as_text(raw) if raw else "", Command.NONE))


def _outcome_dropped(task: asyncio.Future[T]) -> None:
    if not task.cancelled():
        task.exception()


def _refreshed(local: _Local, done: asyncio.Future[None]) -> None:
    """A command read ended: the next flag needs a new read. A failed read is logged here
    (its callers may have gone) and flags the worker again, so the next call retries it."""
    local.refreshing = None
    if done.cancelled():
        return
    error = done.exception()
    if error is not None:
        local.flag.set()
        log.warning("worker command not read", worker_id=local.sighting.worker_id,
                    error=str(error))


def _restarted(old: Sighting, new: Sighting) -> bool:
    """Whether a call comes from another process than the one last seen under its id (the
    same test ``worker_touch.lua`` applies)."""
    if old.meta is None or new.meta is None:
        return False
    a, b = old.meta, new.meta
    return (a.host, a.pid, a.started_at_ms) != (b.host, b.pid, b.started_at_ms)


def _merged(old: Sighting, new: Sighting) -> Sighting:
    """The latest call, keeping the meta and queues of earlier calls that it lacks (a
    Heartbeat carries no queues)."""
    if new.queues is not None and new.meta is not None:
        return new
    return Sighting(
        new.worker_id,
        new.meta if new.meta is not None else old.meta,
        new.queues if new.queues is not None else old.queues,
        new.strict if new.queues is not None else old.strict,
    )


def _queues_json(queues: Sequence[tuple[str, int]]) -> str:
    return json.dumps([[name, weight] for name, weight in queues], separators=(",", ":"))
