"""Why a task is not running: the first obstacle, in the order of the contract's BlockReason.

Computed from one read of the queue's flow state (:class:`FlowSnapshot`), so an answer is
consistent with itself; it is a diagnosis, not a promise (a slot may free a moment later).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum

from leasq_broker.models import StoredTask
from leasq_broker.settings.models import FlowSettings

# A queue nobody leased from for this long has, as far as the broker knows, no worker.
NO_WORKER_AFTER_MS = 60_000


class BlockReason(IntEnum):
    """The contract's BlockReason numbers."""

    READY = 1
    QUEUE_PAUSED = 2
    RATE_LIMITED = 3
    MAX_ACTIVE = 4
    KEY_LIMIT = 5
    SCHEDULED = 6
    RETRY_WAIT = 7
    AGGREGATING = 8
    NO_WORKER = 9


@dataclass(frozen=True, slots=True)
class FlowSnapshot:
    """A queue's flow state read in one round trip (ms on the Redis clock)."""

    now_ms: float
    paused: bool
    flow: FlowSettings
    tokens: float | None  # stored tokens; None: bucket never used (full)
    tokens_at_ms: float | None
    active: int
    key_active: int  # ACTIVE tasks of the task's concurrency key
    last_lease_ms: int | None
    group_flush_ms: int | None  # the task's group's flush instant (AGGREGATING)


@dataclass(frozen=True, slots=True)
class Block:
    """TaskInfo.blocked as plain values."""

    reason: BlockReason
    message: str
    until_ms: int | None = None
    active: int = 0
    limit: int = 0
    last_lease_ms: int | None = None


def explain(task: StoredTask, snap: FlowSnapshot) -> Block | None:
    """Why ``task`` does not run now; None for a state where the question does not arise."""
    if task.state not in ("pending", "scheduled", "retry", "aggregating"):
        return None
    queue, last = task.queue, snap.last_lease_ms
    if snap.paused:
        return Block(BlockReason.QUEUE_PAUSED, f"queue {queue!r} is paused", None, 0, 0, last)
    due = int(task.fields.get("na", "0"))
    if task.state == "scheduled":
        return Block(BlockReason.SCHEDULED, "scheduled: becomes pending at its process time",
                     due, 0, 0, last)
    if task.state == "retry":
        return Block(BlockReason.RETRY_WAIT, "waiting for its next attempt", due, 0, 0, last)
    if task.state == "aggregating":
        return Block(BlockReason.AGGREGATING, "waiting in its group until the group is flushed",
                     snap.group_flush_ms, 0, 0, last)
    return _pending(task, snap)


def _pending(task: StoredTask, snap: FlowSnapshot) -> Block:
    queue, flow, last = task.queue, snap.flow, snap.last_lease_ms
    rate = flow.rate_limit
    if rate is not None:
        tokens = float(rate.burst) if snap.tokens is None else snap.tokens
        if snap.tokens_at_ms is not None:
            tokens += max(0.0, snap.now_ms - snap.tokens_at_ms) * rate.per_second / 1000
        tokens = min(tokens, float(rate.burst))
        if tokens < 1 - 1e-9:
            until = math.ceil(snap.now_ms + (1 - tokens) * 1000 / rate.per_second)
            return Block(BlockReason.RATE_LIMITED,
                         f"queue {queue!r} is rate limited to {rate.per_second:g}/s; next "
                         f"token in {max(0, until - int(snap.now_ms))} ms", until, 0, 0, last)
    if flow.max_active and snap.active >= flow.max_active:
        return Block(BlockReason.MAX_ACTIVE,
                     f"queue {queue!r} is at max active: {snap.active} of {flow.max_active} "
                     "running", None, snap.active, flow.max_active, last)
    key = task.fields.get("ck")
    if key is not None and snap.key_active >= flow.per_key_limit:
        return Block(BlockReason.KEY_LIMIT,
                     f"concurrency key {key!r} is at its limit: {snap.key_active} of "
                     f"{flow.per_key_limit} running", None, snap.key_active,
                     flow.per_key_limit, last)
    if last is None or snap.now_ms - last > NO_WORKER_AFTER_MS:
        return Block(BlockReason.NO_WORKER,
                     f"no worker leased from queue {queue!r} in the last "
                     f"{NO_WORKER_AFTER_MS // 1000} s", None, 0, 0, last)
    return Block(BlockReason.READY, "ready: the next worker that leases from the queue gets "
                 "it (behind the tasks before it)", None, 0, 0, last)
