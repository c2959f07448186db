"""Typed exceptions for the broker's refusals, built from a gRPC status and its details.

The broker answers every refusal with a status code plus a ``google.rpc.ErrorInfo`` detail
(domain ``leasq.v1``) whose reason tells refusals of the same code apart, e.g. ALREADY_EXISTS is
either a task id conflict or a duplicate unique task. :func:`from_rpc_error` turns a failed call
into the most specific class below (the reason decides first, then the code), for the sync and
the async client alike; :func:`from_item_error` does the same for one item of a batch.

Hierarchy::

    LeasqError
    ├── InvalidArgument (.field)      INVALID_ARGUMENT
    │   ├── InvalidTask               ... when the field is part of a task spec
    │   └── BatchTooLarge
    ├── AlreadyExists                 ALREADY_EXISTS
    │   ├── TaskIdConflict
    │   └── DuplicateTask
    ├── ResourceExhausted             RESOURCE_EXHAUSTED
    │   └── PayloadTooLarge
    │       └── HeadersTooLarge
    ├── TaskNotFound                  NOT_FOUND
    ├── QueueNotFound                 NOT_FOUND for a queue no task was ever enqueued to
    ├── ScheduleNotFound              NOT_FOUND for a schedule name
    ├── GroupNotFound                 NOT_FOUND for an empty or unknown aggregation group
    ├── WorkerNotFound                NOT_FOUND for a worker not seen in the last 60 s
    ├── FailedPrecondition            FAILED_PRECONDITION
    │   ├── LeaseLost
    │   ├── WrongState
    │   └── QueueNotEmpty             ... a queue delete without force
    ├── BrokerUnavailable             UNAVAILABLE: retry later
    │   ├── StorageUnavailable        ... the broker is up but cannot reach Redis
    │   └── RpcTimeout                DEADLINE_EXCEEDED: no answer in time
    ├── Unauthenticated               UNAUTHENTICATED
    └── PermissionDenied              PERMISSION_DENIED
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2

from leasq.v1 import task_pb2

#: ``ErrorInfo.domain`` of the broker's own reasons.
DOMAIN = "leasq.v1"
_DETAILS_KEY = "grpc-status-details-bin"
_CODES_BY_NUMBER: dict[int, grpc.StatusCode] = {c.value[0]: c for c in grpc.StatusCode}


def status_code(number: int) -> grpc.StatusCode:
    """The ``grpc.StatusCode`` of a google.rpc code number (as in ``ItemError.code``)."""
    return _CODES_BY_NUMBER.get(number, grpc.StatusCode.UNKNOWN)


class LeasqError(Exception):
    """Base of every error the SDK raises for a failed broker call.

    Attributes: ``code`` (the ``grpc.StatusCode``), ``reason`` (the ``ErrorReason`` name without
    prefix, e.g. ``"TASK_ID_CONFLICT"``; empty when the status carried none), ``details`` (the
    human-readable message), ``field`` (the offending field path for INVALID_ARGUMENT, else
    empty) and ``metadata`` (the ErrorInfo metadata, often naming the queue or task id).
    """

    def __init__(
        self,
        details: str,
        *,
        code: grpc.StatusCode = grpc.StatusCode.UNKNOWN,
        reason: str = "",
        field: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(details)
        self.details = details
        self.code = code
        self.reason = reason
        self.field = field
        self.metadata: dict[str, str] = dict(metadata or {})

    def __str__(self) -> str:
        label = self.reason or self.code.name
        return f"{label}: {self.details}" if self.details else label

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only state would be lost by Exception's default pickling.
        return (
            _rebuild,
            (type(self), self.details, self.code, self.reason, self.field, self.metadata),
        )


def _rebuild(
    cls: type[LeasqError],
    details: str,
    code: grpc.StatusCode,
    reason: str,
    field: str,
    metadata: dict[str, str],
) -> LeasqError:
    return cls(details, code=code, reason=reason, field=field, metadata=metadata)


class InvalidArgument(LeasqError):
    """A request field is malformed or out of range; ``field`` names it (e.g. ``task.queue``)."""


class InvalidTask(InvalidArgument):
    """A field of a task spec is malformed or out of range; ``field`` names it."""


class BatchTooLarge(InvalidArgument):
    """A batch held more items than the broker takes in one call."""


class AlreadyExists(LeasqError):
    """The task could not be added because an equal one exists."""


class TaskIdConflict(AlreadyExists):
    """A task with this task_id exists in the queue, in any state.

    After an automatic retry of an enqueue with a task_id, this can also mean that the first
    attempt added the task before the connection broke.
    """


class DuplicateTask(AlreadyExists):
    """An equal unique task holds the uniqueness lock."""


class ResourceExhausted(LeasqError):
    """A size, cap or rate limit was hit."""


class PayloadTooLarge(ResourceExhausted):
    """The payload (or result) is larger than the broker's limit."""


class HeadersTooLarge(PayloadTooLarge):
    """Headers over 64 entries or 16 KiB of keys plus values."""


class TaskNotFound(LeasqError):
    """No task with this id in this queue."""


class FailedPrecondition(LeasqError):
    """The operation does not apply in the current state."""


class LeaseLost(FailedPrecondition):
    """The lease token is not the task's current lease: stop working on the task."""


class WrongState(FailedPrecondition):
    """The operation does not apply to the task's current state."""


class BrokerUnavailable(LeasqError):
    """The broker could not be reached, or could not do its work: retry with backoff.

    For a call that is not idempotent (enqueue without task_id) the outcome is unknown.
    """


class StorageUnavailable(BrokerUnavailable):
    """The broker is up but cannot reach its Redis."""


class RpcTimeout(BrokerUnavailable):
    """No answer within the call's deadline (also: the broker stayed unreachable that long)."""


class Unauthenticated(LeasqError):
    """Missing or wrong bearer token."""


class PermissionDenied(LeasqError):
    """The token is valid but may not do this."""


class ScheduleNotFound(LeasqError):
    """No schedule with this name."""


class QueueNotFound(LeasqError):
    """No queue of this name: queues are created by their first enqueue, never by a pause."""


class GroupNotFound(LeasqError):
    """No waiting group of this queue, type and key (flushed, deleted, or never made)."""


class WorkerNotFound(LeasqError):
    """No worker with this id called Lease or Heartbeat in the last 60 s."""


class QueueNotEmpty(FailedPrecondition):
    """The queue still holds tasks: delete them first, or delete the queue with force."""


_BY_REASON: dict[str, type[LeasqError]] = {
    "INVALID_FIELD": InvalidArgument,
    "BATCH_TOO_LARGE": BatchTooLarge,
    "TASK_ID_CONFLICT": TaskIdConflict,
    "DUPLICATE_TASK": DuplicateTask,
    "PAYLOAD_TOO_LARGE": PayloadTooLarge,
    "HEADERS_TOO_LARGE": HeadersTooLarge,
    "TASK_NOT_FOUND": TaskNotFound,
    "SCHEDULE_NOT_FOUND": ScheduleNotFound,
    "QUEUE_NOT_FOUND": QueueNotFound,
    "GROUP_NOT_FOUND": GroupNotFound,
    "WORKER_NOT_FOUND": WorkerNotFound,
    "QUEUE_NOT_EMPTY": QueueNotEmpty,
    "PERMISSION_DENIED": PermissionDenied,
    "LEASE_LOST": LeaseLost,
    "WRONG_STATE": WrongState,
    "STORAGE_UNAVAILABLE": StorageUnavailable,
    "UNAUTHENTICATED": Unauthenticated,
}

_BY_CODE: dict[grpc.StatusCode, type[LeasqError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.OUT_OF_RANGE: InvalidArgument,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.NOT_FOUND: TaskNotFound,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.UNAVAILABLE: BrokerUnavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: RpcTimeout,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
}


def error_class(code: grpc.StatusCode, reason: str, field: str) -> type[LeasqError]:
    """The most specific class for a refusal: by reason, else by code, else the base."""
    cls = _BY_REASON.get(reason) or _BY_CODE.get(code, LeasqError)
    if cls is InvalidArgument and _is_task_field(field):
        return InvalidTask
    return cls


def _is_task_field(field: str) -> bool:
    """True for paths inside a task spec: ``task.queue``, ``tasks[3].type``."""
    return field == "task" or field.startswith(("task.", "tasks["))


def from_rpc_error(err: grpc.RpcError) -> LeasqError:
    """The typed exception for a failed call of the sync or the async client.

    Works on anything shaped like ``grpc.Call`` (``code()``, ``details()``,
    ``trailing_metadata()``), which both ``grpc.RpcError`` of a sync call and
    ``grpc.aio.AioRpcError`` are. Rich details that cannot be parsed are ignored.
    """
    code = _call(err, "code") or grpc.StatusCode.UNKNOWN
    details = _call(err, "details") or ""
    status = _rich_status(_call(err, "trailing_metadata") or ())
    reason, metadata, field = _parse_details(status)
    cls = error_class(code, reason, field)
    return cls(details, code=code, reason=reason, field=field, metadata=metadata)


def from_item_error(item: task_pb2.ItemError) -> LeasqError:
    """The typed exception for one failed item of a batch call (EnqueueBatch, Ack, Nack)."""
    code = status_code(item.code)
    cls = error_class(code, item.reason, item.field)
    if cls is InvalidArgument:
        # Every batch item is about one task, whatever path the broker gives the field.
        cls = InvalidTask
    return cls(item.message, code=code, reason=item.reason, field=item.field)


def _call(err: object, name: str) -> Any:
    method = getattr(err, name, None)
    return method() if callable(method) else None


def _rich_status(trailing: Iterable[tuple[str, str | bytes]]) -> status_pb2.Status | None:
    for key, value in trailing:
        if key == _DETAILS_KEY and isinstance(value, bytes):
            try:
                return status_pb2.Status.FromString(value)
            except Exception:  # a malformed detail must not hide the real error
                return None
    return None


def _parse_details(status: status_pb2.Status | None) -> tuple[str, dict[str, str], str]:
    """(reason, ErrorInfo metadata, BadRequest field) from a rich status, empty when absent."""
    reason, field = "", ""
    metadata: dict[str, str] = {}
    for detail in status.details if status is not None else ():
        info = error_details_pb2.ErrorInfo()
        request = error_details_pb2.BadRequest()
        if detail.Unpack(info) and info.domain in ("", DOMAIN):
            reason, metadata = info.reason, dict(info.metadata)
        elif detail.Unpack(request) and request.field_violations and not field:
            field = request.field_violations[0].field
    return reason, metadata, field
