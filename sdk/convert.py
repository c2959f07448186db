"""Conversion between protobuf messages and the SDK's plain values, in one place.

Instants: an aware ``datetime`` is converted to UTC; a naive one is taken to be UTC already
(never local time, which would make results depend on the host's timezone). Durations: ``float``
seconds or ``timedelta``. Values coming back are timezone-aware UTC datetimes and timedeltas,
with microsecond precision (the broker keeps milliseconds at least).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from leasq.v1 import inspect_service_pb2, task_pb2
from leasq_sdk.models import (
    EnqueuedTask,
    GroupMember,
    QueueInfo,
    QueueStats,
    TaskBlock,
    TaskInfo,
    TaskPage,
    TaskState,
)

#: A span of time as callers may give it: seconds, or a ``timedelta``.
Seconds = float | int | timedelta

_T = TypeVar("_T")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NANOS = 1_000_000_000
# Index = proto enum number; every state the contract defines, in order.
_STATES: tuple[TaskState, ...] = tuple(TaskState)
_STATE_NUMBERS: dict[TaskState, int] = {state: number for number, state in enumerate(_STATES)}


def to_duration(value: Seconds) -> Duration:
    """A protobuf Duration from seconds or a timedelta (exact for timedeltas)."""
    if isinstance(value, timedelta):
        nanos = ((value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds) * 1_000
    else:
        nanos = round(value * _NANOS)
    # Duration wants seconds and nanos of the same sign, so split towards zero.
    seconds = abs(nanos) // _NANOS
    rest = abs(nanos) - seconds * _NANOS
    sign = -1 if nanos < 0 else 1
    return Duration(seconds=sign * seconds, nanos=sign * rest)


def to_timestamp(value: datetime) -> Timestamp:
    """A protobuf Timestamp from a datetime; a naive datetime is read as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - _EPOCH
    seconds = delta.days * 86_400 + delta.seconds
    return Timestamp(seconds=seconds, nanos=delta.microseconds * 1_000)


def from_timestamp(value: Timestamp) -> datetime:
    """An aware UTC datetime (microsecond precision) from a protobuf Timestamp."""
    # Positional arguments: keywords cost timedelta a third more, on every enqueue's answer.
    return _EPOCH + timedelta(0, value.seconds, value.nanos // 1_000)


def from_duration(value: Duration) -> timedelta:
    """A timedelta (microsecond precision) from a protobuf Duration."""
    return timedelta(seconds=value.seconds, microseconds=value.nanos // 1_000)


def state_from_proto(number: int) -> TaskState:
    """The SDK state of a proto ``TaskState`` number; unknown numbers become UNSPECIFIED."""
    if 0 <= number < len(_STATES):
        return _STATES[number]
    return TaskState.UNSPECIFIED


def state_to_proto(state: TaskState | str) -> task_pb2.TaskState.ValueType:
    """The proto ``TaskState`` number of a state or its name (``"pending"``, ``"PENDING"``)."""
    return task_pb2.TaskState.ValueType(_STATE_NUMBERS[TaskState(state.lower())])


def enqueued_task(message: task_pb2.EnqueuedTask) -> EnqueuedTask:
    """The result of an accepted enqueue."""
    return EnqueuedTask(
        id=message.id,
        queue=message.queue,
        state=state_from_proto(message.state),
        next_process_at=from_timestamp(message.next_process_at),
    )


def task_info(message: task_pb2.TaskInfo) -> TaskInfo:
    """Everything recorded about a task, with unset optional fields as ``None``."""

    def instant(name: str) -> datetime | None:
        return _optional(message, name, from_timestamp)

    def span(name: str) -> timedelta | None:
        return _optional(message, name, from_duration)

    return TaskInfo(
        id=message.id,
        queue=message.queue,
        type=message.type,
        payload=message.payload,
        headers=dict(message.headers),
        state=state_from_proto(message.state),
        max_retry=message.max_retry,
        retried=message.retried,
        lease_lost_count=message.lease_lost_count,
        last_error=message.last_error,
        last_error_type=message.last_error_type,
        last_failed_at=instant("last_failed_at"),
        enqueued_at=instant("enqueued_at"),
        next_process_at=instant("next_process_at"),
        completed_at=instant("completed_at"),
        result=message.result,
        timeout=span("timeout"),
        deadline=instant("deadline"),
        unique_ttl=span("unique_ttl"),
        retention=span("retention"),
        group=message.group,
        worker_id=message.worker_id,
        lease_expires_at=instant("lease_expires_at"),
        archived_at=instant("archived_at"),
        expires_at=instant("expires_at"),
        cancel_requested=message.cancel_requested,
        members=tuple(group_member(m) for m in message.members),
        concurrency_key=message.concurrency_key,
        blocked=task_block(message.blocked) if message.HasField("blocked") else None,
    )


def task_block(message: task_pb2.TaskBlock) -> TaskBlock:
    """Why a task is not running."""
    name = task_pb2.BlockReason.Name(message.reason).removeprefix("BLOCK_REASON_").lower()
    return TaskBlock(
        reason=name, message=message.message, until=_optional(message, "until", from_timestamp),
        active=message.active, limit=message.limit,
        last_lease_at=_optional(message, "last_lease_at", from_timestamp),
    )


def group_member(message: task_pb2.GroupMember) -> GroupMember:
    """One member of an aggregated task."""
    return GroupMember(
        id=message.id,
        payload=message.payload,
        headers=dict(message.headers),
        enqueued_at=_optional(message, "enqueued_at", from_timestamp),
    )


def _optional(message: Any, name: str, convert: Callable[[Any], _T]) -> _T | None:
    """``convert`` of a message field, or None when the field is unset."""
    return convert(getattr(message, name)) if message.HasField(name) else None


def queue_infos(message: inspect_service_pb2.ListQueuesResponse) -> list[QueueInfo]:
    """Every known queue with its paused flag."""
    return [QueueInfo(queue=q.queue, paused=q.paused,
                      stats=queue_stats(q.stats) if q.HasField("stats") else None)
            for q in message.queues]


def queue_stats(message: inspect_service_pb2.QueueStats) -> QueueStats:
    """Counts and totals of one queue."""
    return QueueStats(
        queue=message.queue,
        paused=message.paused,
        pending=message.pending,
        scheduled=message.scheduled,
        active=message.active,
        retry=message.retry,
        archived=message.archived,
        completed=message.completed,
        aggregating=message.aggregating,
        processed_today=message.processed_today,
        failed_today=message.failed_today,
        processed_total=message.processed_total,
        failed_total=message.failed_total,
        latency=from_duration(message.latency),
        memory_bytes=message.memory_bytes,
    )


def task_page(message: inspect_service_pb2.ListTasksResponse) -> TaskPage:
    """One page of listed tasks."""
    return TaskPage(
        tasks=[task_info(t) for t in message.tasks],
        next_page_token=message.next_page_token,
        total_size=message.total_size,
    )
