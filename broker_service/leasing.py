"""Lease, Heartbeat, Ack and Nack: the worker side of the broker.

Lease answers at once when tasks are ready; otherwise it marks its queues as waited on, waits
for a wake-up from the notifier or for the earliest scheduled/retry task to fall due, and tries
again, until its wait ends. At most ``max_waiting`` Lease calls wait at once (each holds a call,
an event and a timer); one more that would have to wait is refused with
:class:`TooManyWaitingLeases`. When the broker starts shutting down, every waiting Lease answers
at once, empty, so that shutdown never sits out a long poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from leasq_broker.clock import Clock
from leasq_broker.errors import TooManyWaitingLeases
from leasq_broker.models import (
    HeartbeatOutcome,
    LeaseAsk,
    LeaseGrant,
    LeaseRef,
    NackAction,
    Settlement,
    SettleOutcome,
    SettleStatus,
)
from leasq_broker.notifier import Notifier
from leasq_broker.observability import metrics
from leasq_broker.patterns import lease as pattern_lease
from leasq_broker.patterns.index import PatternIndex
from leasq_broker.store import TaskStore
from leasq_broker.weighting import plan_lease

log = structlog.get_logger(__name__)

# Leased envelopes per response stop growing past this, to fit gRPC's default 4 MiB limit.
LEASE_BYTE_BUDGET = 3 * 1024 * 1024
# A long poll re-checks at least this often, covering wake-ups lost with a Redis reconnect.
MAX_IDLE_CHECK_S = 5.0
# Extra life of the "someone waits" marker beyond the poll, so enqueuers never miss a poller.
WAIT_MARK_SLACK_MS = 1000
# A Lease with patterns asks again at once, at most this often, while queues of its patterns are
# still marked "maybe ready" after an empty answer (each empty answer drops those it asked).
PATTERN_RETRIES = 64


class Leasing:
    """The lease lifecycle use cases."""

    def __init__(
        self,
        store: TaskStore,
        clock: Clock,
        notifier: Notifier,
        *,
        patterns: PatternIndex,
        on_leased: Callable[[int], None],
        rng: random.Random | None = None,
        max_waiting: int = 10_000,
    ) -> None:
        self._store = store
        self._clock = clock
        self._notifier = notifier
        self._patterns = patterns
        self._on_leased = on_leased
        self._rng = rng or random.Random()
        self._background: set[asyncio.Future[Any]] = set()
        self._max_waiting = max_waiting
        self._waiting = 0
        self._shutting_down = False
        # Whether a worker must get no tasks (an operator told it to go quiet or stop); set by
        # the app to the worker registry's in-memory check.
        self.holds_back: Callable[[str], bool] = lambda worker_id: False

    def begin_shutdown(self) -> None:
        """End every long poll now (each answers what it has: nothing) and start no new one."""
        self._shutting_down = True
        self._notifier.wake_all()

    @property
    def waiting(self) -> int:
        """Lease calls waiting for a task right now."""
        return self._waiting

    async def lease(self, ask: LeaseAsk) -> list[LeaseGrant]:
        """Lease ready tasks, long-polling up to ``ask.wait_ms`` when none is ready."""
        grants = await self._lease_unless_abandoned(ask)
        if grants or ask.wait_ms <= 0 or self._shutting_down:
            return grants
        if self._waiting >= self._max_waiting:
            raise TooManyWaitingLeases(
                f"this broker already holds {self._max_waiting} waiting Lease calls "
                "(--max-waiting-leases) and no task is ready; retry after a pause, or spread "
                "the workers over more broker replicas"
            )
        self._waiting += 1
        try:
            return await self._long_poll(ask)
        finally:
            self._waiting -= 1

    async def _long_poll(self, ask: LeaseAsk) -> list[LeaseGrant]:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + ask.wait_ms / 1000
        queues = [name for name, _ in ask.queues]
        held_marked = False
        patterns = [pattern for _, pattern, _ in ask.patterns]
        with self._notifier.listen(queues) as woken, self._patterns.listen(patterns, woken):
            # Registered locally and marked in Redis before the re-check below, so no enqueue
            # can fall between the check and the wait unnoticed. Patterns mark every queue they
            # match; a queue that appears later wakes the poll through the pattern index.
            watched = await pattern_lease.watched(ask, self._patterns) if patterns else queues
            await self._store.mark_waiting(watched, ask.wait_ms + WAIT_MARK_SLACK_MS)
            while True:
                if self._shutting_down:
                    return []
                woken.clear()
                grants = await self._lease_unless_abandoned(ask)
                remaining = give_up - loop.time()
                if grants or remaining <= 0:
                    return grants
                holds = [self._store.holds.get(queue, 0) for queue in watched]
                if not held_marked and any(holds):
                    # Held back by a limit: Ack, Nack and reclaim publish a wake-up from now
                    # on; re-check once so that a slot freed before the mark is not missed.
                    held = [queue for queue, hold in zip(watched, holds, strict=True) if hold]
                    await self._store.mark_held(held, ask.wait_ms + WAIT_MARK_SLACK_MS)
                    held_marked = True
                    continue
                await self._sleep_until_woken(woken, queues, remaining, holds)

    async def _lease_unless_abandoned(self, ask: LeaseAsk) -> list[LeaseGrant]:
        """Lease now; if the caller gives up meanwhile (a worker cancelling its long poll at
        shutdown), give back whatever the script leased instead of letting it sit ACTIVE until
        its lease expires."""
        leasing = asyncio.ensure_future(self.lease_now(ask))
        try:
            return await asyncio.shield(leasing)
        except asyncio.CancelledError:
            leasing.add_done_callback(self._give_back)
            raise

    def _give_back(self, leasing: asyncio.Future[list[LeaseGrant]]) -> None:
        if leasing.cancelled() or leasing.exception() is not None or not leasing.result():
            return
        self._give_back_grants(leasing.result())
        log.info("long poll abandoned; leased tasks given back", count=len(leasing.result()))

    def _give_back_grants(self, grants: Sequence[LeaseGrant]) -> None:
        """Requeue leased tasks nobody will receive (no attempt spent), in the background."""
        if not grants:
            return
        items = [Settlement(LeaseRef(g.queue, g.id, g.lease_token), NackAction.REQUEUE)
                 for g in grants]
        giving_back = asyncio.ensure_future(self.settle(items, None))
        self._background.add(giving_back)
        giving_back.add_done_callback(self._background.discard)

    async def _sleep_until_woken(
        self, woken: asyncio.Event, queues: Sequence[str], remaining: float,
        holds: Sequence[int] = (),
    ) -> None:
        timeout = min(remaining, MAX_IDLE_CHECK_S)
        # A rate-limited queue wakes its waiters at its next token (a timer, not a spin).
        tokens = [hold for hold in holds if hold > 0]
        if tokens:
            timeout = min(timeout, max(0.0, (min(tokens) - self._clock.now_ms()) / 1000))
        due = await self._store.earliest_due_ms(queues)
        if due is not None:
            timeout = min(timeout, max(0.0, (due - self._clock.now_ms()) / 1000))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await woken.wait()

    async def lease_now(self, ask: LeaseAsk) -> list[LeaseGrant]:
        """Lease what is ready right now, filling slots a queue could not from the others.
        Nothing for a worker that was told to go quiet or stop.

        With patterns, an empty answer from stale "maybe ready" queues (each such answer drops
        the queues it asked) is followed at once by another call while the patterns' other
        queues are still marked maybe ready."""
        _, grants = await self._lease_once(ask)
        return await self._retry_patterns(ask, grants)

    async def _retry_patterns(self, ask: LeaseAsk, grants: list[LeaseGrant]) -> list[LeaseGrant]:
        retries = PATTERN_RETRIES if ask.patterns else 0
        while not grants and retries and pattern_lease.may_have_tasks(ask, self._patterns):
            retries -= 1
            _, grants = await self._lease_once(ask)
        return grants

    async def _lease_once(
        self, ask: LeaseAsk, settling: Sequence[Settlement] = ()
    ) -> tuple[list[SettleOutcome], list[LeaseGrant]]:
        """One lease of ``ask``; ``settling``: Acks/Nacks applied first, in the first round's
        Redis round trip (their outcomes come first in the answer)."""
        if self.holds_back(ask.worker_id):
            return await self._settle_only(settling), []
        seq = self._patterns.seq
        queues, from_patterns = await pattern_lease.resolve(ask, self._patterns, self._rng)
        if not queues:  # only patterns, and none of their queues may have a task
            return await self._settle_only(settling), []
        now = self._clock.now_ms()
        first, fallback = plan_lease(queues, ask.max_tasks, strict=ask.strict, rng=self._rng)
        started = time.perf_counter()
        outcomes, grants = await self._store.settle_and_lease(
            settling, [(share.queue, share.count) for share in first],
            now_ms=now, lease_ms=ask.lease_ms, worker_id=ask.worker_id,
            byte_budget=LEASE_BYTE_BUDGET,
        )
        metrics.redis_roundtrip("settle" if settling else "lease", time.perf_counter() - started)
        short = {share.queue for share in first if _count(grants, share.queue) < share.count}
        for queue in fallback:
            missing = ask.max_tasks - len(grants)
            if missing <= 0:
                break
            if queue in short:
                continue
            more = await self._store.lease(
                [(queue, missing)], now_ms=now, lease_ms=ask.lease_ms,
                worker_id=ask.worker_id, byte_budget=LEASE_BYTE_BUDGET,
            )
            grants += more
            if len(more) < missing:
                short.add(queue)
        for queue in short & from_patterns:
            self._patterns.came_back_short(queue, seq)
        if grants:
            self._on_leased(now + ask.lease_ms)
            metrics.leases_granted(grants)
            log.debug("leased", worker_id=ask.worker_id, count=len(grants))
        return outcomes, grants

    async def heartbeat(self, leases: Sequence[LeaseRef], lease_ms: int) -> list[HeartbeatOutcome]:
        return await self._store.heartbeat(leases, now_ms=self._clock.now_ms(), lease_ms=lease_ms)

    async def settle(
        self, items: Sequence[Settlement], lease_next: LeaseAsk | None
    ) -> tuple[list[SettleOutcome], list[LeaseGrant]]:
        """Ack/Nack items, then lease more if asked (never for a refused single item).

        The settle scripts and the first lease round share one Redis round trip, the settle
        scripts first (the worker counts on the slots they free). A refused single item fails
        the whole call, so the tasks leased with it are given back at once."""
        if lease_next is None:
            return await self._settle_only(items), []
        outcomes, grants = await self._lease_once(lease_next, items)
        self._settled(items, outcomes)
        if len(items) == 1 and outcomes[0].status not in _SUCCESS:
            self._give_back_grants(grants)
            return outcomes, []
        return outcomes, await self._retry_patterns(lease_next, grants)

    async def _settle_only(self, items: Sequence[Settlement]) -> list[SettleOutcome]:
        if not items:
            return []
        started = time.perf_counter()
        outcomes = await self._store.settle(items, self._clock.now_ms())
        metrics.redis_roundtrip("settle", time.perf_counter() - started)
        self._settled(items, outcomes)
        return outcomes

    def _settled(self, items: Sequence[Settlement], outcomes: Sequence[SettleOutcome]) -> None:
        """Wake long polls of requeued tasks' queues; log refused items."""
        for queue in {item.lease.queue for item in items if item.action is NackAction.REQUEUE}:
            self._notifier.wake(queue)
        for item, outcome in zip(items, outcomes, strict=True):
            if outcome.status not in _SUCCESS:
                log.info("settlement refused", task_id=item.lease.task_id,
                         queue=item.lease.queue, outcome=outcome.status.name)


# Settled now, or by the same lease token in an earlier call whose answer was lost.
_SUCCESS = (SettleStatus.SETTLED, SettleStatus.ALREADY_SETTLED)


def _count(grants: Sequence[LeaseGrant], queue: str) -> int:
    return sum(1 for grant in grants if grant.queue == queue)
