"""How tasks look: one line per task in listings (``task ls``, ``task search``, ``group
members``), and every field of one task (``task get``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from leasq_broker.operator_cli import formatting as fmt
from leasq_broker.operator_cli.output import fields, table
from leasq_sdk import TaskInfo, TaskState

PAYLOAD_PREVIEW = 60
ERROR_PREVIEW = 60

#: ``when``: the instant that matters in the task's state (next run, lease end, archived...).
LIST_COLUMNS = ("id", "type", "payload", "enqueued", "when", "retried", "last error")


def _when(task: TaskInfo, now: datetime) -> str:
    """The instant that matters in the task's state, relative to now."""
    if task.state is TaskState.ARCHIVED:
        return fmt.instant(task.archived_at, now)
    if task.state is TaskState.COMPLETED:
        return fmt.instant(task.completed_at, now)
    if task.state is TaskState.ACTIVE:
        return "lease until " + fmt.instant(task.lease_expires_at, now)
    return fmt.instant(task.next_process_at, now)


def _error(task: TaskInfo) -> str:
    if task.last_error_type and task.last_error:
        return f"{task.last_error_type}: {task.last_error}"
    return task.last_error


def task_row(task: TaskInfo, now: datetime) -> list[Any]:
    error = task.last_error.splitlines()[0] if task.last_error else ""
    if len(error) > ERROR_PREVIEW:
        error = error[: ERROR_PREVIEW - 3] + "..."
    return [task.id, task.type, fmt.payload_text(task.payload, limit=PAYLOAD_PREVIEW),
            fmt.instant(task.enqueued_at), _when(task, now),
            f"{task.retried}/{task.max_retry}", error]


def task_table(tasks: Iterable[TaskInfo], title: str | None = None) -> RenderableType:
    now = datetime.now(UTC)
    rows = [task_row(t, now) for t in tasks]
    if not rows:
        return Text("no tasks")
    return table(title, LIST_COLUMNS, rows, right=("retried",), wrap=("payload", "last error"))


def task_detail(task: TaskInfo) -> RenderableType:
    now = datetime.now(UTC)
    pairs: list[tuple[str, Any]] = [
        ("id", task.id), ("queue", task.queue), ("type", task.type),
        ("state", task.state.value + (" (cancel requested)" if task.cancel_requested else "")),
        ("retried", f"{task.retried} of {task.max_retry}"),
        ("enqueued", fmt.instant(task.enqueued_at, now)),
        ("next run", fmt.instant(task.next_process_at, now)),
    ]
    optional: list[tuple[str, Any]] = [
        ("group", task.group), ("worker", task.worker_id),
        ("lease expires", task.lease_expires_at and fmt.instant(task.lease_expires_at, now)),
        ("timeout", task.timeout and fmt.duration(task.timeout)),
        ("deadline", task.deadline and fmt.instant(task.deadline, now)),
        ("unique for", task.unique_ttl and fmt.duration(task.unique_ttl)),
        ("retention", task.retention and fmt.duration(task.retention)),
        ("lost leases", task.lease_lost_count),
        ("last error", _error(task)),
        ("last failed", task.last_failed_at and fmt.instant(task.last_failed_at, now)),
        ("completed", task.completed_at and fmt.instant(task.completed_at, now)),
        ("archived", task.archived_at and fmt.instant(task.archived_at, now)),
        ("expires", task.expires_at and fmt.instant(task.expires_at, now)),
        ("members", len(task.members)),
    ]
    pairs += [(name, value) for name, value in optional if value]
    pairs += [(f"header {key}", value) for key, value in sorted(task.headers.items())]
    parts: list[RenderableType] = [fields(f"Task {task.id}", pairs), Text(""),
                                   Text("payload:", style="bold"),
                                   Text(fmt.payload_text(task.payload))]
    if task.result:
        parts += [Text("result:", style="bold"), Text(fmt.payload_text(task.result))]
    return Group(*parts)
