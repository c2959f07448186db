"""Coalesces single Enqueue calls that arrive together into one Redis round trip.

Under load many Enqueue RPCs are in flight at once; each would pay a full redis-py command and
a network round trip. gRPC hands the broker one call per event-loop turn, so "calls of the same
turn" are rarely more than one; instead, the records that arrive while a round trip is under
way wait for it and then go together: one script call per queue, all queues in one pipeline.
An idle broker sends a call alone, one loop turn later (no timer, no added latency); a busy
one sends bigger batches as it gets busier, so the Redis cost per task falls as load rises.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from leasq_broker.clock import Clock
from leasq_broker.models import EnqueueStatus, TaskRecord
from leasq_broker.observability import metrics
from leasq_broker.store import TaskStore

Pending = tuple[str, TaskRecord, "asyncio.Future[EnqueueStatus]"]
# Round trips under way at once. One would make every call that arrives during a trip wait
# for it; a second trip keeps that wait short while batches still grow with load.
MAX_TRIPS = 1


class EnqueueBatcher:
    """Submit one record, get its status; records that arrive together share a round trip."""

    def __init__(self, store: TaskStore, clock: Clock, on_enqueued: Callable[[str], None],
                 max_trips: int = MAX_TRIPS) -> None:  # fmt: skip
        self._store = store
        self._clock = clock
        self._on_enqueued = on_enqueued
        self._max_trips = max_trips
        self._pending: list[Pending] = []
        self._flush_due = False
        self._trips = 0
        self._flushes: set[asyncio.Task[None]] = set()

    async def submit(self, queue: str, record: TaskRecord) -> EnqueueStatus:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[EnqueueStatus] = loop.create_future()
        self._pending.append((queue, record, future))
        if not self._flush_due and self._trips < self._max_trips:
            self._flush_due = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._flush_due = False
        if not self._pending or self._trips >= self._max_trips:
            return  # the trip under way sends them when it ends
        batch, self._pending = self._pending, []
        self._trips += 1
        flush = asyncio.ensure_future(self._send(batch))
        self._flushes.add(flush)
        flush.add_done_callback(self._flushes.discard)

    def _trip_ended(self) -> None:
        self._trips -= 1
        if self._pending and not self._flush_due:
            self._flush_due = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _wake_early(self, groups: dict[str, list[Pending]]) -> None:
        """Wake the long polls of queues that get a task ready now, as soon as the enqueue
        is written rather than once its answer is back: Redis runs the woken Lease after the
        enqueue (one connection, in call order), so an idle worker's task no longer waits for
        a round trip in between. The wake-up runs one loop turn later, after the enqueue's
        write; a task Redis refuses (a duplicate) leaves the poll to wait on."""
        ready = [queue for queue, entries in groups.items()
                 if any(not record.process_at_ms and not record.group_id
                        for _, record, _ in entries)]  # fmt: skip
        if ready:
            loop = asyncio.get_running_loop()
            for queue in ready:
                loop.call_soon(self._on_enqueued, queue)

    async def _send(self, batch: list[Pending]) -> None:
        groups: dict[str, list[Pending]] = {}
        for entry in batch:
            groups.setdefault(entry[0], []).append(entry)
        metrics.enqueue_batch("coalesced", len(batch))
        if self._store.writes_in_order:
            self._wake_early(groups)
        try:
            requests = [([record for _, record, _ in entries]) for entries in groups.values()]
            started = time.perf_counter()
            replies = await self._store.enqueue_groups(
                list(zip(groups, requests, strict=True)), self._clock.now_ms()
            )
            metrics.redis_roundtrip("enqueue", time.perf_counter() - started)
        except Exception as error:  # every caller of this round trip gets the failure
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        except asyncio.CancelledError:  # the broker stops: its callers must not wait forever
            for _, _, future in batch:
                future.cancel()
            raise
        finally:
            self._trip_ended()
        woke = False
        for queue, statuses in zip(groups, replies, strict=True):
            if not isinstance(statuses, Exception) and EnqueueStatus.ENQUEUED in statuses:
                self._on_enqueued(queue)
                woke = True
        if woke:
            # Answer one loop turn later: the woken long polls send their Lease to Redis
            # first; the Enqueue answers are not on the path of the task just added.
            await asyncio.sleep(0)
        for entries, statuses in zip(groups.values(), replies, strict=True):
            if isinstance(statuses, Exception):  # that queue's script did not run
                for _, _, future in entries:
                    if not future.done():
                        future.set_exception(statuses)
                continue
            for (_, _, future), status in zip(entries, statuses, strict=True):
                if not future.done():
                    future.set_result(status)
