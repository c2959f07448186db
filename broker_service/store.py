"""The Redis side of every state transition.

Each public method groups its work per queue (one queue's keys share a Cluster slot) and runs
one Lua script per queue, pipelining queues into a single round trip. Nothing here validates
input or knows about gRPC: callers hand in validated domain values.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from leasq_broker.errors import StorageUnavailable
from leasq_broker.groups.calls import join_call
from leasq_broker.groups.models import INLINE_FLUSH_MEMBERS
from leasq_broker.keys import Keys
from leasq_broker.models import (
    EnqueueStatus,
    HeartbeatOutcome,
    HeartbeatStatus,
    LeaseGrant,
    LeaseRef,
    NackAction,
    Settlement,
    SettleOutcome,
    SettleStatus,
    TaskRecord,
)
from leasq_broker.scripts import ScriptArg, ScriptCall, Scripts, refused_before_writing

T = TypeVar("T")
K = TypeVar("K")

# enqueue.lua's reply codes by number (an index is cheaper than EnqueueStatus(code) per task).
_ENQUEUE_STATUSES = tuple(EnqueueStatus)
DAY_COUNTER_TTL_S = 90 * 24 * 3600
# Scheduled/retry tasks moved to pending per lease call, so a lease never stalls on a backlog.
FORWARD_PER_LEASE = 100
# Tasks past their deadline archived per lease call (the rest wait for the next call).
DEADLINE_ARCHIVES_PER_LEASE = 1000
# A settled lease's token is remembered until the lease would have expired, plus this slack:
# a worker retries a lost Ack/Nack answer only until its lease expiry, so a repeat comes within
# that time. Bounding the marker by the lease keeps its memory at (settle rate x lease length)
# instead of growing with a fixed long window.
SETTLED_MARKER_MS = 30 * 1000
# A released task (no handler) waits this long unless the Nack says otherwise.
DEFAULT_RELEASE_DELAY_MS = 10_000


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Default retry delay: ``retried**exponent + base + jitter * (retried + 1)`` seconds, with
    ``jitter`` drawn uniformly from ``range(jitter_span)``; capped at 10 years. ``nack.lua``
    applies the formula (it alone knows ``retried``); these are its parameters."""

    base_s: int = 15
    exponent: int = 4
    jitter_span: int = 30


def utc_day(now_ms: int) -> str:
    """The UTC day of an instant, as used in daily counter keys."""
    return datetime.fromtimestamp(now_ms / 1000, UTC).strftime("%Y-%m-%d")


class TaskStore:
    """Runs the transition scripts against one Redis."""

    def __init__(
        self,
        redis: Redis,
        scripts: Scripts,
        keys: Keys,
        *,
        lease_lost_cap: int = 5,
        release_cap: int = 100,
        backoff: BackoffPolicy | None = None,
    ) -> None:
        self._redis = redis
        self._scripts = scripts
        self._keys = keys
        self._lease_lost_cap = lease_lost_cap
        self._release_cap = release_cap
        self._backoff = backoff or BackoffPolicy()
        # Told the flush instant of every group an enqueue created (the aggregator's wake-up).
        self.on_group_due: Callable[[int], None] | None = None
        # Told the instant of every retry a Nack filed (the forwarder's wake-up: the forward
        # script wakes Leases waiting on the queue when the retry falls due).
        self.on_retry_due: Callable[[int], None] | None = None
        # Most members a join script flushes inline for full groups (see group_join.lua).
        self.inline_flush_members = INLINE_FLUSH_MEMBERS
        # Per queue, what its latest lease script said about its limits: 0 none held the call
        # back, -1 a slot must free (max active, key limits), else the Redis-clock instant (ms)
        # of the next rate-limit token.
        self.holds: dict[str, int] = {}

    @property
    def writes_in_order(self) -> bool:
        """Whether Redis runs this store's calls in the order they are made (see
        :attr:`Scripts.in_order`)."""
        return self._scripts.in_order

    async def enqueue_groups(
        self, groups: Sequence[tuple[str, Sequence[TaskRecord]]], now_ms: int, *,
        atomic: bool = False,
    ) -> list[list[EnqueueStatus] | StorageUnavailable]:
        """Add tasks to several queues in one round trip; statuses per queue, per record.

        A queue's script writes all of its tasks or nothing (validated records leave it no way
        to fail half-way): a queue whose script Redis refused gets a StorageUnavailable in place
        of its statuses, and when Redis refused the whole round trip this raises one.
        ``atomic`` (a batch call): all queues in one MULTI/EXEC transaction, so a failure before
        Redis ran it leaves nothing written.

        The queues are added to the index of known queues (which the background loops serve)
        in the same round trip, every time: an in-memory "already known" cache would be wrong
        after Redis lost its data (FLUSHALL, a restart without persistence), and the loops
        would then never see the queue again. The index is a key of its own, in another
        Cluster slot than the queues, hence a pipelined SADD rather than a write in the script.
        Grouped records (``group_id`` set) join their groups through ``group_join.lua``; the
        queues that got some are added to the aggregator's index after the scripts ran (see
        :mod:`leasq_broker.groups.store` for why after).
        """
        register = self._keys.register_queues(queue for queue, _ in groups)
        calls: list[ScriptCall] = []
        parts: list[list[tuple[bool, list[int]]]] = []
        for queue, records in groups:
            plain = [i for i, record in enumerate(records) if not record.group_id]
            joined = [i for i, record in enumerate(records) if record.group_id]
            parts.append([])
            if plain or not joined:
                calls.append(self._enqueue_call(queue, [records[i] for i in plain], now_ms))
                parts[-1].append((False, plain))
            if joined:
                calls.append(join_call(self._keys, queue, [records[i] for i in joined], now_ms,
                                       self.inline_flush_members))
                parts[-1].append((True, joined))
        grouped = [queue for (queue, _), p in zip(groups, parts, strict=True) if p[-1][0]]
        index = [("SADD", self._keys.grouped_queues(), *grouped)] if grouped else []
        try:
            replies = iter(await self._scripts.call_each(
                calls, also=register, atomic=atomic, after=index))
        except ResponseError as error:
            raise _unwritten(error, "none of the tasks was written") from error
        out: list[list[EnqueueStatus] | StorageUnavailable] = []
        for (queue, records), queue_parts in zip(groups, parts, strict=True):
            statuses = [EnqueueStatus.ENQUEUED] * len(records)
            failed: StorageUnavailable | None = None
            for is_join, indexes in queue_parts:
                reply = next(replies)
                if isinstance(reply, ResponseError):
                    failed = _unwritten(reply, f"none of the tasks for queue {queue!r} was "
                                               "written")
                    continue
                codes = reply[0] if is_join else reply
                if is_join and int(reply[1]) >= 0 and self.on_group_due is not None:
                    self.on_group_due(int(reply[1]))
                for i, code in zip(indexes, codes, strict=True):
                    statuses[i] = (EnqueueStatus.AGGREGATED if is_join and int(code) == 0
                                   else _ENQUEUE_STATUSES[int(code)])
            out.append(failed if failed is not None else statuses)
        return out

    def _enqueue_call(self, queue: str, records: Sequence[TaskRecord], now_ms: int) -> ScriptCall:
        k = self._keys
        keys = [k.pending(queue), k.scheduled(queue), k.waiting(queue), *self._task_keys(queue),
                *self._unique_keys(queue), *self._flow_keys(queue), k.key_pending(queue),
                k.key_position(queue), k.due_forward(queue)]
        keyed = "1" if any(record.concurrency_key for record in records) else "0"
        args: list[ScriptArg] = [now_ms, k.notify_channel(), queue, len(records), keyed]
        for record in records:
            args.append(record.meta())
            args.append(record.envelope)
        return ScriptCall("enqueue", keys, args)

    def _flow_keys(self, queue: str) -> list[str]:
        """The first keys of ``_flow.lua``, in its order: settings, flow, key ring, key active
        (its key pending set and key positions come where each script says)."""
        k = self._keys
        return [k.queue_settings(queue), k.flow(queue), k.key_ring(queue), k.key_active(queue)]

    def _task_keys(self, queue: str) -> list[str]:
        """The keys of ``_task.lua``: the task records and envelopes hashes."""
        return [self._keys.tasks(queue), self._keys.envelopes(queue)]

    def _unique_keys(self, queue: str) -> list[str]:
        """The keys of ``_unique.lua``: the unique locks hash and expiry zset."""
        return [self._keys.unique_locks(queue), self._keys.unique_expiry(queue)]

    def _key_list_keys(self, queue: str) -> list[str]:
        """The concurrency keys' PENDING set and positions (``_flow.lua``'s kpend, kpos)."""
        return [self._keys.key_pending(queue), self._keys.key_position(queue)]

    async def remember_queue(self, queue: str) -> None:
        """Add a queue to the index of known queues (background loops serve those)."""
        pipe = self._redis.pipeline(transaction=False)
        for command in self._keys.register_queues([queue]):
            pipe.execute_command(*command)
        await pipe.execute()

    async def lease(
        self,
        asks: Sequence[tuple[str, int]],
        *,
        now_ms: int,
        lease_ms: int,
        worker_id: str,
        byte_budget: int,
    ) -> list[LeaseGrant]:
        """Lease up to ``count`` tasks from each ``(queue, count)``, in one round trip.

        Each queue's answer on its limits is kept in :attr:`holds`: the long poll reads it to
        know whether to wait for a slot or a token rather than for a new task."""
        _, grants = await self.settle_and_lease((), asks, now_ms=now_ms, lease_ms=lease_ms,
                                                worker_id=worker_id, byte_budget=byte_budget)
        return grants

    async def settle_and_lease(
        self, items: Sequence[Settlement], asks: Sequence[tuple[str, int]], *, now_ms: int,
        lease_ms: int, worker_id: str, byte_budget: int,
    ) -> tuple[list[SettleOutcome], list[LeaseGrant]]:
        """:meth:`settle` ``items``, then :meth:`lease` ``asks``, in one round trip (an Ack or
        Nack with ``lease_next``). Redis runs the scripts in order, so the slots and the
        max-active room that the settled leases free are there for the lease scripts."""
        groups, calls = self._settle_calls(items, now_ms)
        prefixes = []
        for queue, count in asks:
            prefix = secrets.token_hex(8)
            prefixes.append(prefix)
            calls.append(self._lease_call(queue, count, now_ms, lease_ms, worker_id, prefix,
                                          byte_budget))
        replies = await self._scripts.call_many(calls) if calls else []
        outcomes = self._settle_outcomes(len(items), groups, replies[: len(groups)], now_ms)
        return outcomes, self._grants(asks, prefixes, replies[len(groups) :], now_ms, lease_ms)

    def _grants(
        self, asks: Sequence[tuple[str, int]], prefixes: Sequence[str], replies: Sequence[Any],
        now_ms: int, lease_ms: int,
    ) -> list[LeaseGrant]:
        expires = now_ms + lease_ms
        grants: list[LeaseGrant] = []
        for (queue, _), prefix, flat in zip(asks, prefixes, replies, strict=True):
            self.holds[queue] = int(flat[0])
            for n, i in enumerate(range(1, len(flat), 4), start=1):
                grants.append(
                    LeaseGrant(queue, flat[i].decode(), flat[i + 1], int(flat[i + 2]),
                               int(flat[i + 3]), f"{prefix}.{n}", now_ms, expires)
                )
        return grants

    def _lease_call(
        self, queue: str, count: int, now_ms: int, lease_ms: int, worker_id: str, prefix: str,
        byte_budget: int,
    ) -> ScriptCall:
        k = self._keys
        day = utc_day(now_ms)
        keys = [k.pending(queue), k.scheduled(queue), k.retry(queue), k.active(queue),
                k.paused(queue), k.archived(queue), k.processed(queue, day), k.processed(queue),
                k.failed(queue, day), k.failed(queue), *self._flow_keys(queue),
                k.due_reclaim(queue), k.due_janitor(queue), *self._task_keys(queue),
                *self._unique_keys(queue), *self._key_list_keys(queue)]
        args: list[ScriptArg] = [now_ms, count, lease_ms, worker_id, prefix, byte_budget,
                                 FORWARD_PER_LEASE, DEADLINE_ARCHIVES_PER_LEASE,
                                 DAY_COUNTER_TTL_S, queue]
        return ScriptCall("lease", keys, args)

    async def heartbeat(
        self, leases: Sequence[LeaseRef], *, now_ms: int, lease_ms: int
    ) -> list[HeartbeatOutcome]:
        """Extend leases (``lease_ms`` 0: each lease's own duration); an outcome per lease."""
        by_queue = _group_by_queue(leases, lambda ref: ref.queue)
        calls = []
        for queue, indexes in by_queue.items():
            keys = [self._keys.active(queue), *self._task_keys(queue),
                    self._keys.due_reclaim(queue)]
            args: list[str | int] = [now_ms, lease_ms, queue]
            for i in indexes:
                args += [leases[i].task_id, leases[i].token]
            calls.append(ScriptCall("heartbeat", keys, args))
        replies = await self._scripts.call_many(calls)
        outcomes: list[HeartbeatOutcome] = [HeartbeatOutcome(HeartbeatStatus.LOST, None)] * len(
            leases
        )
        for indexes, reply in zip(by_queue.values(), replies, strict=True):
            for i, value in zip(indexes, reply, strict=True):
                value = int(value)
                if value > 0:
                    outcomes[i] = HeartbeatOutcome(HeartbeatStatus.EXTENDED, value)
                elif value < 0:
                    outcomes[i] = HeartbeatOutcome(HeartbeatStatus.CANCEL_REQUESTED, -value)
        return outcomes

    async def settle(self, items: Sequence[Settlement], now_ms: int) -> list[SettleOutcome]:
        """Apply acks and nacks, grouped per queue and kind; an outcome per item."""
        outcomes, _ = await self.settle_and_lease(items, (), now_ms=now_ms, lease_ms=0,
                                                  worker_id="", byte_budget=0)
        return outcomes

    def _settle_calls(
        self, items: Sequence[Settlement], now_ms: int
    ) -> tuple[dict[tuple[str, bool], list[int]], list[ScriptCall]]:
        """The ack and nack script calls of ``items``, one per queue and kind."""
        groups = _group_by_queue(
            items, lambda item: (item.lease.queue, item.action is None)
        )
        calls = [
            self._ack_call(queue, [items[i] for i in indexes], now_ms)
            if is_ack
            else self._nack_call(queue, [items[i] for i in indexes], now_ms)
            for (queue, is_ack), indexes in groups.items()
        ]
        return groups, calls

    def _settle_outcomes(
        self, count: int, groups: dict[tuple[str, bool], list[int]], replies: Sequence[Any],
        now_ms: int,
    ) -> list[SettleOutcome]:
        outcomes: list[SettleOutcome] = [SettleOutcome(SettleStatus.NOT_FOUND)] * count
        for ((_, is_ack), indexes), reply in zip(groups.items(), replies, strict=True):
            for i, value in zip(indexes, reply, strict=True):
                outcomes[i] = _ack_outcome(int(value)) if is_ack else _nack_outcome(int(value))
                if not is_ack and int(value) > now_ms and self.on_retry_due is not None:
                    self.on_retry_due(int(value))
        return outcomes

    def _ack_call(self, queue: str, items: Sequence[Settlement], now_ms: int) -> ScriptCall:
        k = self._keys
        keys = [k.active(queue), k.completed(queue), k.processed(queue, utc_day(now_ms)),
                k.processed(queue), *self._flow_keys(queue), k.held(queue),
                k.due_janitor(queue), *self._task_keys(queue), *self._unique_keys(queue),
                *self._key_list_keys(queue)]
        args: list[str | bytes | int] = [now_ms, DAY_COUNTER_TTL_S, SETTLED_MARKER_MS,
                                         k.notify_channel(), queue]
        for item in items:
            keys.append(k.settled(queue, item.lease.task_id))
            args += [item.lease.task_id, item.lease.token, item.result]
        return ScriptCall("ack", keys, args)

    def _nack_call(self, queue: str, items: Sequence[Settlement], now_ms: int) -> ScriptCall:
        k = self._keys
        day = utc_day(now_ms)
        keys = [k.active(queue), k.pending(queue), k.retry(queue), k.archived(queue),
                k.processed(queue, day), k.processed(queue), k.failed(queue, day),
                k.failed(queue), k.waiting(queue), *self._flow_keys(queue), k.held(queue),
                k.due_forward(queue), k.due_janitor(queue), *self._task_keys(queue),
                *self._unique_keys(queue), *self._key_list_keys(queue)]
        policy = self._backoff
        args: list[str | bytes | int] = [now_ms, DAY_COUNTER_TTL_S, policy.base_s,
                                         policy.exponent, k.notify_channel(), queue,
                                         self._release_cap, SETTLED_MARKER_MS]
        for item in items:
            keys.append(k.settled(queue, item.lease.task_id))
            delay = item.retry_after_ms
            if delay is None:
                delay = DEFAULT_RELEASE_DELAY_MS if item.action is NackAction.RELEASE else -1
            args += [item.lease.task_id, item.lease.token, int(item.action or NackAction.RETRY),
                     item.error, item.error_type, delay, secrets.randbelow(policy.jitter_span)]
        return ScriptCall("nack", keys, args)

    async def reclaim(self, queues: Sequence[str], now_ms: int, limit: int) -> list[list[int]]:
        """Return expired leases of each queue; per queue [returned, archived, next expiry]."""
        k = self._keys
        day = utc_day(now_ms)
        calls = [
            ScriptCall(
                "reclaim",
                [k.active(q), k.pending(q), k.archived(q), k.waiting(q), k.processed(q, day),
                 k.processed(q), k.failed(q, day), k.failed(q), *self._flow_keys(q),
                 k.held(q), k.due_reclaim(q), k.due_janitor(q), *self._task_keys(q),
                 *self._unique_keys(q), *self._key_list_keys(q)],
                [now_ms, limit, self._lease_lost_cap, k.notify_channel(), q, DAY_COUNTER_TTL_S],
            )
            for q in queues
        ]
        return [[int(v) for v in reply] for reply in await self._scripts.call_many(calls)]

    async def forward(self, queues: Sequence[str], now_ms: int, limit: int) -> list[list[int]]:
        """Move due scheduled/retry tasks to pending; per queue [moved, earliest due or -1]."""
        k = self._keys
        calls = [
            ScriptCall(
                "forward",
                [k.scheduled(q), k.retry(q), k.pending(q), k.waiting(q), *self._flow_keys(q),
                 k.due_forward(q), *self._task_keys(q), *self._key_list_keys(q)],
                [now_ms, limit, k.notify_channel(), q],
            )
            for q in queues
        ]
        return [[int(v) for v in reply] for reply in await self._scripts.call_many(calls)]

    async def clean(
        self, queues: Sequence[str], now_ms: int, *, archive_cutoff_ms: int, archive_max: int,
        limit: int,
    ) -> list[list[int]]:
        """Remove expired completed and archived tasks; per queue [completed, archived]."""
        k = self._keys
        calls = [
            ScriptCall("janitor", [k.completed(q), k.archived(q), k.due_janitor(q),
                                   *self._task_keys(q), *self._unique_keys(q)],
                       [now_ms, archive_cutoff_ms, archive_max, limit, q])
            for q in queues
        ]
        return [[int(v) for v in reply] for reply in await self._scripts.call_many(calls)]

    async def cancel(self, queue: str, task_id: str) -> int:
        """Flag an active task for cancellation: 0 flagged, 1 not active, 2 not found."""
        return int(await self._scripts.call("cancel", self._task_keys(queue), [task_id]))

    async def move(self, action: str, queue: str, task_id: str, now_ms: int) -> int:
        """An operator's run / archive / delete of one task: 0 done, 1 wrong state, 2 missing."""
        k = self._keys
        keys = [k.tasks(queue), k.pending(queue), k.scheduled(queue), k.retry(queue),
                k.archived(queue)]
        args: list[ScriptArg] = [task_id]
        if action == "run":
            keys += [k.waiting(queue), *self._flow_keys(queue), *self._key_list_keys(queue),
                     k.envelopes(queue)]
            args += [now_ms, k.notify_channel(), queue]
        elif action == "archive":
            keys += [k.flow(queue), k.due_janitor(queue), k.envelopes(queue),
                     *self._unique_keys(queue), *self._key_list_keys(queue)]
            args += [now_ms, queue]
        else:
            keys += [k.completed(queue), k.flow(queue), k.envelopes(queue),
                     *self._unique_keys(queue), *self._key_list_keys(queue)]
        return int(await self._scripts.call(f"{action}_task", keys, args))

    async def set_paused(self, queue: str, paused: bool) -> bool:
        """Pause or resume a known queue; False, and nothing written, for an unknown one.

        A resume publishes a wake-up in the same script (``resume_queue.lua``), so that Leases
        already waiting on the queue (in any broker replica) take its tasks now rather than at
        their next re-check."""
        if not await self._redis.sismember(self._keys.queues(), queue):
            return False
        if paused:
            await self._redis.set(self._keys.paused(queue), b"1")
        else:
            await self._scripts.call("resume_queue", [self._keys.paused(queue)],
                                     [self._keys.notify_channel(), queue])
        return True

    async def mark_waiting(self, queues: Sequence[str], ttl_ms: int) -> None:
        """Ask enqueuers of these queues to publish wake-ups for the next ``ttl_ms``."""
        await self._scripts.call_many(
            [ScriptCall("mark_waiting", [self._keys.waiting(q)], [ttl_ms]) for q in queues]
        )

    async def mark_held(self, queues: Sequence[str], ttl_ms: int) -> None:
        """Ask Ack, Nack and reclaim of these queues to publish a wake-up when they free a
        slot, for the next ``ttl_ms`` (a Lease waits for one of the queues' limits)."""
        await self._scripts.call_many(
            [ScriptCall("mark_waiting", [self._keys.held(q)], [ttl_ms]) for q in queues]
        )

    async def earliest_due_ms(self, queues: Sequence[str]) -> int | None:
        """The earliest scheduled or retry time among these queues, if any."""
        pipe = self._redis.pipeline(transaction=False)
        for q in queues:
            pipe.zrange(self._keys.scheduled(q), 0, 0, withscores=True)
            pipe.zrange(self._keys.retry(q), 0, 0, withscores=True)
        heads = [int(entries[0][1]) for entries in await pipe.execute() if entries]
        return min(heads) if heads else None

    async def known_queues(self) -> list[str]:
        """Every queue that ever held a task."""
        members = await self._redis.smembers(self._keys.queues())
        return sorted(as_text(m) for m in members)


def _group_by_queue(items: Sequence[T], key: Callable[[T], K]) -> dict[K, list[int]]:
    """Indexes of ``items`` grouped by ``key``, groups in first-seen order."""
    groups: dict[K, list[int]] = {}
    for index, item in enumerate(items):
        groups.setdefault(key(item), []).append(index)
    return groups


def as_text(value: bytes | str) -> str:
    """Redis replies are bytes; a client configured to decode gives str: accept both."""
    return value.decode() if isinstance(value, bytes) else value


def _ack_outcome(code: int) -> SettleOutcome:
    return SettleOutcome(SettleStatus(code))


def _nack_outcome(value: int) -> SettleOutcome:
    if value < 0:
        return SettleOutcome(SettleStatus(-value))
    return SettleOutcome(SettleStatus.SETTLED, value or None)


def _unwritten(error: ResponseError, what: str) -> StorageUnavailable:
    """The domain error for a write Redis refused before it began; anything else (a script
    that failed half-way, a bug) is raised as it is, never reported as "nothing written"."""
    if not refused_before_writing(error):
        raise error
    return StorageUnavailable(f"Redis refused the write ({error}); {what}; retry later")
