"""Domain errors of the broker.

They carry what a caller needs to act (the field, the reason) and know nothing of gRPC: the edge
(``leasq_broker.edge.status``) maps them to status codes once. ``reason`` values are the
``leasq.v1.ErrorReason`` names without their prefix.
"""

from __future__ import annotations


class LeasqError(Exception):
    """Base of every refusal the broker reports to a caller."""

    reason: str = "UNSPECIFIED"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidField(LeasqError):
    """A request field is malformed or out of range (INVALID_ARGUMENT)."""

    reason = "INVALID_FIELD"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class BatchTooLarge(InvalidField):
    """A batch holds more items than allowed (INVALID_ARGUMENT)."""

    reason = "BATCH_TOO_LARGE"


class PayloadTooLarge(LeasqError):
    """Payload or result over the configured byte limit (RESOURCE_EXHAUSTED)."""

    reason = "PAYLOAD_TOO_LARGE"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class HeadersTooLarge(PayloadTooLarge):
    """Headers over 64 entries or 16 KiB (RESOURCE_EXHAUSTED)."""

    reason = "HEADERS_TOO_LARGE"


class TaskIdConflict(LeasqError):
    """A task with the requested id exists in the queue (ALREADY_EXISTS)."""

    reason = "TASK_ID_CONFLICT"


class DuplicateTask(LeasqError):
    """An equal unique task holds the uniqueness lock (ALREADY_EXISTS)."""

    reason = "DUPLICATE_TASK"


class TaskNotFound(LeasqError):
    """No task with this id in this queue (NOT_FOUND)."""

    reason = "TASK_NOT_FOUND"


class LeaseLost(LeasqError):
    """The lease token is not the task's current lease (FAILED_PRECONDITION)."""

    reason = "LEASE_LOST"


class WrongState(LeasqError):
    """The operation does not apply to the task's current state (FAILED_PRECONDITION)."""

    reason = "WRONG_STATE"


class StorageUnavailable(LeasqError):
    """Redis cannot be reached; the caller should retry (UNAVAILABLE)."""

    reason = "STORAGE_UNAVAILABLE"


class Unauthenticated(LeasqError):
    """Missing or wrong bearer token (UNAUTHENTICATED)."""

    reason = "UNAUTHENTICATED"


class QueueNotFound(LeasqError):
    """No queue of this name is known: none was ever enqueued to (NOT_FOUND)."""

    reason = "QUEUE_NOT_FOUND"


class TooManyWaitingLeases(LeasqError):
    """A Lease would wait, but the broker holds its cap of waiting Lease calls
    (RESOURCE_EXHAUSTED). The caller should pause before asking again."""


class ScheduleNotFound(LeasqError):
    """No schedule with this name (NOT_FOUND)."""

    reason = "SCHEDULE_NOT_FOUND"


class GroupNotFound(LeasqError):
    """No AGGREGATING group of this queue, type and key (NOT_FOUND)."""

    reason = "GROUP_NOT_FOUND"


class WorkerNotFound(LeasqError):
    """No worker with this id called Lease or Heartbeat recently (NOT_FOUND)."""

    reason = "WORKER_NOT_FOUND"


class QueueNotEmpty(LeasqError):
    """The queue still holds tasks and the caller did not force (FAILED_PRECONDITION)."""

    reason = "QUEUE_NOT_EMPTY"
