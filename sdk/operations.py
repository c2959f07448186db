"""Operator values: a queue's daily history, search pages and the broker's server info, and
their conversion to and from the contract.

::

    history = client.queue_history("email", days=30)
    moved = client.run_all("email", "archived", error_type="SMTPError")
    for task in client.iter_search("email", "archived", payload_contains="user-42"):
        print(task.id, task.last_error)
    print(client.server_info().redis.used_memory_bytes)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal

from leasq.v1 import inspect_service_pb2 as pb
from leasq_sdk.convert import (
    Seconds,
    from_duration,
    from_timestamp,
    state_to_proto,
    task_info,
    to_duration,
)
from leasq_sdk.models import TaskInfo, TaskState

#: The bulk operations, by the name of their request message's prefix.
BulkOperation = Literal["run", "archive", "delete"]


@dataclass(frozen=True, slots=True)
class DailyStats:
    """One UTC day of a queue: attempts finished (succeeded or failed) and failed."""

    date: date
    processed: int
    failed: int


@dataclass(frozen=True, slots=True)
class QueueHistory:
    """A queue's daily counts, today first, and its totals since it was created."""

    queue: str
    days: list[DailyStats]
    processed_total: int
    failed_total: int


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One page of :meth:`Client.search_tasks`: may hold fewer matches than asked for (even
    none) while ``next_page_token`` is set, since each call examines a bounded slice."""

    tasks: list[TaskInfo] = field(default_factory=list)
    #: Pass to the next ``search_tasks`` call; empty once the whole state was examined.
    next_page_token: str = ""
    #: How many tasks this call examined.
    examined: int = 0


@dataclass(frozen=True, slots=True)
class RedisInfo:
    """The state of the Redis behind the broker."""

    version: str
    #: ``"standalone"``, ``"cluster"`` or ``"sentinel"``.
    mode: str
    used_memory_bytes: int
    #: 0: no limit.
    max_memory_bytes: int
    connected_clients: int
    aof_enabled: bool
    #: ``"always"``, ``"everysec"`` or ``"no"``.
    aof_fsync: str
    uptime: timedelta


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """The broker's version, when its process started, and its Redis."""

    version: str
    started_at: datetime
    redis: RedisInfo


def history_request(queue: str, days: int) -> pb.GetQueueHistoryRequest:
    """The GetQueueHistory request."""
    return pb.GetQueueHistoryRequest(queue=queue, days=days)


def queue_history(queue: str, message: pb.GetQueueHistoryResponse) -> QueueHistory:
    """The history as plain values."""
    return QueueHistory(
        queue=queue,
        days=[DailyStats(date=date.fromisoformat(d.date), processed=d.processed, failed=d.failed)
              for d in message.days],
        processed_total=message.processed_total,
        failed_total=message.failed_total,
    )


def task_filter(type: str | None, error_type: str | None, older_than: Seconds | None
                ) -> pb.TaskFilter:
    """The filter of a bulk operation: only the given criteria are set."""
    result = pb.TaskFilter(type=type or "", error_type=error_type or "")
    if older_than is not None:
        result.older_than.CopyFrom(to_duration(older_than))
    return result


def bulk_request(
    operation: BulkOperation,
    queue: str,
    state: TaskState | str,
    *,
    type: str | None,
    error_type: str | None,
    older_than: Seconds | None,
) -> pb.RunAllTasksRequest | pb.ArchiveAllTasksRequest | pb.DeleteAllTasksRequest:
    """The RunAllTasks, ArchiveAllTasks or DeleteAllTasks request."""
    number = state_to_proto(state)
    narrow = task_filter(type, error_type, older_than)
    if operation == "run":
        return pb.RunAllTasksRequest(queue=queue, state=number, filter=narrow)
    if operation == "archive":
        return pb.ArchiveAllTasksRequest(queue=queue, state=number, filter=narrow)
    return pb.DeleteAllTasksRequest(queue=queue, state=number, filter=narrow)


def search_request(
    queue: str,
    state: TaskState | str,
    *,
    id_prefix: str,
    type: str,
    payload_contains: bytes | str,
    error_type: str,
    page_size: int,
    page_token: str,
) -> pb.SearchTasksRequest:
    """The SearchTasks request; a str ``payload_contains`` is searched for as UTF-8."""
    needle = (payload_contains.encode() if isinstance(payload_contains, str)
              else bytes(payload_contains))
    return pb.SearchTasksRequest(
        queue=queue, state=state_to_proto(state), id_prefix=id_prefix, type=type,
        payload_contains=needle, error_type=error_type, page_size=page_size,
        page_token=page_token,
    )


def search_page(message: pb.SearchTasksResponse) -> SearchPage:
    """One page of matches."""
    return SearchPage(tasks=[task_info(t) for t in message.tasks],
                      next_page_token=message.next_page_token, examined=message.examined)


def server_info(message: pb.GetServerInfoResponse) -> ServerInfo:
    """The broker and its Redis as plain values."""
    r = message.redis
    return ServerInfo(
        version=message.version,
        started_at=from_timestamp(message.started_at),
        redis=RedisInfo(
            version=r.version, mode=r.mode, used_memory_bytes=r.used_memory_bytes,
            max_memory_bytes=r.max_memory_bytes, connected_clients=r.connected_clients,
            aof_enabled=r.aof_enabled, aof_fsync=r.aof_fsync, uptime=from_duration(r.uptime),
        ),
    )
