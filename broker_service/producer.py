"""Enqueue: validate what producers send, turn it into store records, report per task.

One validation path serves Enqueue and EnqueueBatch; a batch is split per queue so each queue
costs one script call, and all queues go out in one pipeline.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from leasq_broker import validation as v
from leasq_broker.batching import EnqueueBatcher
from leasq_broker.clock import Clock
from leasq_broker.errors import DuplicateTask, InvalidField, LeasqError, TaskIdConflict
from leasq_broker.groups.models import check_group_key, group_id
from leasq_broker.keys import Keys
from leasq_broker.models import Enqueued, EnqueueStatus, NewTask, TaskRecord
from leasq_broker.observability import metrics
from leasq_broker.store import TaskStore

_printable = v.PRINTABLE_RE.fullmatch
_queue_name = v.QUEUE_RE.fullmatch
_task_id = v.TASK_ID_RE.fullmatch
# Task ids need uniqueness, not secrecy: a seeded PRNG avoids a syscall per task.
_IDS = random.Random()

DEFAULT_QUEUE = "default"
DEFAULT_MAX_RETRY = 25
DEFAULT_TIMEOUT_MS = 30 * 60 * 1000

# Encodes the immutable part of a validated task (the edge owns the wire format):
# (task with queue and defaults filled in, task id, enqueued_at ms) -> envelope bytes.
EnvelopeEncoder = Callable[[NewTask, str, int], bytes]
# A grouped task's other two encodings: (task, task id, enqueued_at ms) -> (GroupMember bytes,
# envelope of the task its group flushes into, without id, payload and members).
GroupEncoder = Callable[[NewTask, str, int], tuple[bytes, bytes]]
Notify = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class ProducerLimits:
    max_payload_bytes: int


class Producer:
    """The Enqueue use case."""

    def __init__(
        self,
        store: TaskStore,
        keys: Keys,
        clock: Clock,
        encode: EnvelopeEncoder,
        limits: ProducerLimits,
        on_enqueued: Notify,
        encode_group: GroupEncoder | None = None,
    ) -> None:
        self._store = store
        self._encode_group = encode_group
        self._keys = keys
        self._clock = clock
        self._encode = encode
        self._limits = limits
        self._on_enqueued = on_enqueued
        self._batcher = EnqueueBatcher(store, clock, on_enqueued)

    async def enqueue(self, task: NewTask, field: str = "task") -> Enqueued:
        """Enqueue one task or raise the domain error that refused it."""
        now = self._clock.now_ms()
        record = self.record(task, field, now)
        status = await self._batcher.submit(task.queue, record)
        result = _outcome(task.queue, record, status, now)
        if isinstance(result, LeasqError):
            raise result
        return result

    async def enqueue_many(
        self, tasks: Sequence[NewTask | LeasqError]
    ) -> list[Enqueued | LeasqError]:
        """Enqueue tasks independently; a result or an error per task, in order (an item that
        is already an error, e.g. one the edge could not read, stays that error).

        All queues are written in one transaction. Either every item's true outcome comes back
        (a queue whose write Redis refused gets StorageUnavailable per item: none of its tasks
        was written), or nothing was written and this raises StorageUnavailable (a retry with
        task ids is then answered honestly)."""
        now = self._clock.now_ms()
        results: list[Enqueued | LeasqError | None] = [None] * len(tasks)
        per_queue: dict[str, list[tuple[int, TaskRecord]]] = {}
        for index, task in enumerate(tasks):
            if isinstance(task, LeasqError):
                results[index] = task
                continue
            try:
                record = self.record(task, f"tasks[{index}]", now)
            except LeasqError as error:
                results[index] = error
                continue
            per_queue.setdefault(task.queue, []).append((index, record))
        if not per_queue:
            return [result for result in results if result is not None]
        metrics.enqueue_batch("batch", sum(len(entries) for entries in per_queue.values()))
        replies = await self._store.enqueue_groups(
            [(queue, [record for _, record in entries]) for queue, entries in per_queue.items()],
            now, atomic=True,
        )
        if all(isinstance(reply, LeasqError) for reply in replies):
            raise next(reply for reply in replies if isinstance(reply, LeasqError))
        for (queue, entries), statuses in zip(per_queue.items(), replies, strict=True):
            if isinstance(statuses, LeasqError):
                for index, _ in entries:
                    results[index] = statuses
                continue
            for (index, record), status in zip(entries, statuses, strict=True):
                results[index] = _outcome(queue, record, status, now)
            if EnqueueStatus.ENQUEUED in statuses:
                self._on_enqueued(queue)
        return [result for result in results if result is not None]

    def record(self, task: NewTask, field: str, now: int) -> TaskRecord:
        """Validate a task (errors name fields under ``field``) and build its store record."""
        _validate(task, field, now, self._limits)
        task.queue = task.queue or DEFAULT_QUEUE
        if task.max_retry is None:
            task.max_retry = DEFAULT_MAX_RETRY
        if task.timeout_ms is None and task.deadline_ms is None:
            task.timeout_ms = DEFAULT_TIMEOUT_MS
        task_id = task.task_id or f"{_IDS.getrandbits(128):032x}"
        # A past instant (any valid Timestamp, year 1 included) means now: the store is only
        # ever handed whole, non-negative numbers.
        process_at = task.process_at_ms if task.process_at_ms and task.process_at_ms > now else 0
        if task.process_in_ms:
            process_at = now + task.process_in_ms
        if not (task.unique_ttl_ms or task.group or task.concurrency_key):  # the usual task
            return TaskRecord(task_id, self._encode(task, task_id, now), process_at,
                              task.max_retry, "", 0, task.retention_ms or 0, "",
                              task.deadline_ms or 0)
        unique_lock = ""
        if task.unique_ttl_ms:
            unique_lock = _unique_digest(task)
        member = base = b""
        if task.group:
            if self._encode_group is None:
                raise InvalidField(f"{field}.group", "grouped tasks are not accepted here")
            member, base = self._encode_group(task, task_id, now)
        return TaskRecord(
            id=task_id,
            envelope=b"" if task.group else self._encode(task, task_id, now),
            process_at_ms=process_at,
            max_retry=task.max_retry,
            unique_lock=unique_lock,
            unique_ttl_ms=task.unique_ttl_ms or 0,
            retention_ms=task.retention_ms or 0,
            group=task.group,
            deadline_ms=task.deadline_ms or 0,
            group_id=group_id(task.type, task.group) if task.group else "",
            member=member,
            base=base,
            concurrency_key=task.concurrency_key,
        )


def _validate(task: NewTask, field: str, now: int, limits: ProducerLimits) -> None:
    # This runs for every task of every batch: optional fields are checked only when set, and
    # a rule's function (which names the field in its error) runs only when a quick test of
    # the same rule fails.
    if not (0 < len(task.type) <= v.MAX_SHORT_TEXT and _printable(task.type)):
        v.printable(f"{field}.type", task.type, required=True)
    if len(task.payload) > limits.max_payload_bytes:
        v.payload(f"{field}.payload", task.payload, limits.max_payload_bytes)
    if task.headers:
        v.headers(f"{field}.headers", task.headers)
    if task.queue and not _queue_name(task.queue):
        v.queue_name(f"{field}.queue", task.queue)
    if task.task_id and not _task_id(task.task_id):
        v.task_id(f"{field}.task_id", task.task_id)
    if task.max_retry is not None:
        v.in_range(f"{field}.max_retry", task.max_retry, 0, v.MAX_RETRY)
    if task.timeout_ms is not None:
        v.duration_ms(f"{field}.timeout", task.timeout_ms, 1, v.MAX_TIMEOUT_MS)
    if task.deadline_ms is not None and task.deadline_ms <= now:
        raise InvalidField(f"{field}.deadline", "must be in the future")
    if task.process_at_ms is not None and task.process_in_ms is not None:
        raise InvalidField(f"{field}.process_in", "set process_at or process_in, not both")
    if task.process_at_ms is not None and task.process_at_ms > now + v.MAX_SCHEDULE_MS:
        raise InvalidField(f"{field}.process_at", "must be at most 10 years ahead")
    if task.process_in_ms is not None:
        v.duration_ms(f"{field}.process_in", task.process_in_ms, 0, v.MAX_SCHEDULE_MS)
    if task.unique_ttl_ms is not None:
        v.duration_ms(f"{field}.unique_ttl", task.unique_ttl_ms, 1, v.MAX_UNIQUE_TTL_MS)
    if task.unique_key:
        v.short_text(f"{field}.unique_key", task.unique_key)
        if not task.unique_ttl_ms:
            raise InvalidField(f"{field}.unique_key", "needs unique_ttl to take effect")
    if task.retention_ms is not None:
        v.duration_ms(f"{field}.retention", task.retention_ms, 0, v.MAX_RETENTION_MS)
    if task.concurrency_key:
        v.concurrency_key(f"{field}.concurrency_key", task.concurrency_key)
        if task.group:
            raise InvalidField(f"{field}.concurrency_key", "a grouped task cannot have one: "
                               "its group's flushed task is what runs")
    if task.group:
        check_group_key(f"{field}.group", task.group)
        for name, value in (("process_at", task.process_at_ms),
                            ("process_in", task.process_in_ms),
                            ("unique_ttl", task.unique_ttl_ms)):
            if value is not None:
                raise InvalidField(f"{field}.{name}", "a grouped task cannot have it: the "
                                   "group's flush decides when the task runs")


def _unique_digest(task: NewTask) -> str:
    if task.unique_key:
        return "k:" + hashlib.sha256(task.unique_key.encode()).hexdigest()
    digest = hashlib.sha256(task.type.encode())
    digest.update(b"\0")
    digest.update(task.payload)
    return "p:" + digest.hexdigest()


def _outcome(
    queue: str, record: TaskRecord, status: EnqueueStatus, now: int
) -> Enqueued | LeasqError:
    if status is EnqueueStatus.TASK_ID_CONFLICT:
        return TaskIdConflict(f"a task with id {record.id!r} already exists in queue {queue!r}")
    if status is EnqueueStatus.DUPLICATE_TASK:
        return DuplicateTask(
            f"an equal unique task is already in queue {queue!r}; the lock lasts at most "
            f"{record.unique_ttl_ms} ms or until that task finishes"
        )
    if status is EnqueueStatus.AGGREGATED:
        return Enqueued(record.id, queue, False, now, aggregating=True)
    scheduled = record.process_at_ms > now
    return Enqueued(record.id, queue, scheduled, max(record.process_at_ms, now))
