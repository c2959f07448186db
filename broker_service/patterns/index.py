"""This process's view of the queues patterns can reach.

Three things are kept in memory, so that a Lease with a pattern matching 1,000 queues costs
about what a Lease of one queue costs:

- the known queues (the ``queues`` index in Redis), loaded once and refreshed by the
  :class:`~leasq_broker.patterns.refresher.PatternRefresher` twice a second while patterns are
  in use, and at once for a queue this broker sees a task arrive on;
- per pattern, its matching known queues in name order (extended as queues appear);
- the "maybe ready" queues: a queue enters when a task arrives on it (a local enqueue, a
  wake-up published by another replica), when it first appears, or when a sweep finds pending
  tasks in it; it leaves when a Lease asked it for tasks and got fewer. Only maybe-ready queues
  are asked, so a pattern over 1,000 mostly empty queues asks Redis about the few that have
  work. A hint that arrives while a Lease is in flight is never lost: each hint carries a
  sequence number, and only a hint older than the Lease is dropped.

Long polls with patterns register here too: a hint for a queue one of their patterns matches
(including a queue that did not exist when the poll began) wakes them.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

import structlog

from leasq_broker.patterns.matching import compile_pattern

log = structlog.get_logger(__name__)

# A pattern not leased with for this long stops being swept (and its match list is dropped).
IDLE_S = 60.0


class QueueSource(Protocol):
    """The Redis reads the index needs."""

    async def known_queues(self) -> set[str]: ...

    async def known_count(self) -> int: ...

    async def pending_counts(self, queues: Sequence[str]) -> list[int]: ...


class PatternIndex:
    """Known queues, per-pattern matches, maybe-ready queues and pattern waiters."""

    def __init__(
        self, source: QueueSource, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._source = source
        self._clock = clock
        self._known: set[str] | None = None
        self._known_count = 0  # size of the queue index at the latest full read
        self._loading: asyncio.Lock | None = None
        self._matches: dict[str, list[str]] = {}
        self._ready: dict[str, int] = {}  # queue -> sequence number of its latest hint
        self._seq = 0
        self._used: dict[str, float] = {}  # pattern -> when a Lease last used it
        # pattern -> events of the long polls waiting on it: a hint costs one match per
        # distinct pattern, however many polls wait.
        self._waiters: dict[str, set[asyncio.Event]] = {}

    @property
    def seq(self) -> int:
        """The latest hint's sequence number: take it before asking Redis."""
        return self._seq

    def active(self) -> bool:
        """Whether some pattern was used lately or a long poll waits on one."""
        return bool(self._used) or bool(self._waiters)

    async def matched(self, pattern: str) -> list[str]:
        """Known queues matching ``pattern``, in name order (a live list: do not keep it).

        The first use of a pattern probes its queues for pending tasks, once."""
        self._used[pattern] = self._clock()
        if self._known is None:
            await self._load()
        found = self._matches.get(pattern)
        if found is None:
            regex = compile_pattern(pattern)
            assert self._known is not None
            found = self._matches[pattern] = sorted(q for q in self._known if regex.fullmatch(q))
            await self.probe(found)
        return found

    def matched_now(self, pattern: str) -> Sequence[str]:
        """The queues ``pattern`` matched when last resolved (empty if never)."""
        return self._matches.get(pattern, ())

    def ready_among(self, queues: Sequence[str]) -> list[str]:
        """Those of ``queues`` that may hold ready tasks, in their order."""
        ready = self._ready
        return [queue for queue in queues if queue in ready]

    def hint(self, queue: str) -> None:
        """A task may be ready in ``queue`` (it just arrived, or a sweep saw it)."""
        self._seq += 1
        self._ready[queue] = self._seq
        if self._known is not None and queue not in self._known:
            self._add_known(queue)
        for pattern, events in self._waiters.items():
            if compile_pattern(pattern).fullmatch(queue):
                for event in events:
                    event.set()

    def came_back_short(self, queue: str, seq_before: int) -> None:
        """A Lease started at ``seq_before`` got fewer tasks from ``queue`` than it asked."""
        hinted = self._ready.get(queue)
        if hinted is not None and hinted <= seq_before:
            del self._ready[queue]

    async def probe(self, queues: Sequence[str]) -> None:
        """Ask Redis which of ``queues`` (not already maybe-ready) have pending tasks."""
        unknown = [queue for queue in queues if queue not in self._ready]
        if not unknown:
            return
        counts = await self._source.pending_counts(unknown)
        for queue, count in zip(unknown, counts, strict=True):
            if count > 0:
                self.hint(queue)

    async def refresh_known(self, *, full: bool = True) -> None:
        """Re-read the known queues: new ones are hinted (and wake waiters), gone ones drop.
        Unless ``full``, the index is read only when its size changed (one SCARD)."""
        if not full and self._known is not None:
            if await self._source.known_count() == self._known_count:
                return
        names = await self._source.known_queues()
        self._known_count = len(names)
        if self._known is None:
            self._known = names
            return
        gone = self._known - names
        if gone:
            self._known -= gone
            for queue in gone:
                self._ready.pop(queue, None)
            for pattern, found in self._matches.items():
                self._matches[pattern] = [q for q in found if q not in gone]
        for queue in sorted(names - self._known):
            log.debug("new queue seen", queue=queue)
            self.hint(queue)

    async def sweep(self) -> None:
        """Probe the queues of recently used patterns; forget patterns idle for IDLE_S."""
        now = self._clock()
        for pattern in [p for p, used in self._used.items() if now - used > IDLE_S]:
            del self._used[pattern]
            if pattern not in self._waiters:
                self._matches.pop(pattern, None)
        queues: dict[str, None] = {}
        for pattern in list(self._used) + list(self._waiters):
            for queue in self._matches.get(pattern, ()):
                queues[queue] = None
        await self.probe(list(queues))

    @contextlib.contextmanager
    def listen(self, patterns: Sequence[str], event: asyncio.Event) -> Iterator[None]:
        """Set ``event`` whenever a queue matching one of ``patterns`` may have a task."""
        if not patterns:
            yield
            return
        for pattern in patterns:
            self._waiters.setdefault(pattern, set()).add(event)
        try:
            yield
        finally:
            for pattern in patterns:
                events = self._waiters.get(pattern)
                if events is not None:
                    events.discard(event)
                    if not events:
                        del self._waiters[pattern]

    async def _load(self) -> None:
        if self._loading is None:
            self._loading = asyncio.Lock()
        async with self._loading:
            if self._known is None:
                await self.refresh_known()

    def _add_known(self, queue: str) -> None:
        assert self._known is not None
        self._known.add(queue)
        for pattern, found in self._matches.items():
            if compile_pattern(pattern).fullmatch(queue):
                bisect.insort(found, queue)
