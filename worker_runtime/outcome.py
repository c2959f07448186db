"""What an attempt amounts to, as the broker will be told: Ack with a result, or a Nack.

The mapping from a handler's exception to a Nack is one pure function, so the whole policy
(retry, archive, retry-after, timeouts) reads in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

from leasq.v1 import broker_service_pb2 as pb
from leasq_sdk import PayloadError
from leasq_worker.errors import (
    DeadlineExceeded,
    RetryAfter,
    SkipRetry,
    TaskCanceled,
    UnknownTaskType,
)

RETRY = pb.NACK_ACTION_RETRY
ARCHIVE = pb.NACK_ACTION_ARCHIVE
REQUEUE = pb.NACK_ACTION_REQUEUE
RELEASE = pb.NACK_ACTION_RELEASE

# Failures that a later attempt cannot fix: archive at once. PayloadError: the task
# definition could not decode the payload, and the payload will not change.
_ARCHIVED = (SkipRetry, DeadlineExceeded, UnknownTaskType, TaskCanceled, PayloadError)


@dataclass(frozen=True, slots=True)
class Outcome:
    """Ack (``ack=True``, with ``result``) or Nack (``action``, error text and type)."""

    ack: bool
    result: bytes = b""
    action: int = RETRY
    error: str = ""
    error_type: str = ""
    retry_after: float | None = None


EMPTY_ACK = Outcome(ack=True)
REQUEUED = Outcome(ack=False, action=REQUEUE, error="worker shutting down", error_type="Requeued")


def released(task_type: str) -> Outcome:
    """The Nack for a task this worker has no handler for: given back for another worker, no
    attempt spent (the broker counts it in released_count and archives it at its cap)."""
    return Outcome(
        False, action=RELEASE, error=f"no handler registered for task type {task_type!r}",
        error_type="NoHandler",
    )  # fmt: skip


def ack(result: bytes) -> Outcome:
    """A success, storing ``result`` when the task has a retention."""
    return Outcome(ack=True, result=result) if result else EMPTY_ACK


def failure(exc: BaseException) -> Outcome:
    """The Nack for an exception raised by (or on behalf of) a handler."""
    error_type = getattr(exc, "error_type", None) or type(exc).__name__
    error = str(exc) or error_type
    if isinstance(exc, RetryAfter):
        return Outcome(
            False, action=RETRY, error=error, error_type=error_type, retry_after=exc.seconds
        )
    action = ARCHIVE if isinstance(exc, _ARCHIVED) else RETRY
    return Outcome(False, action=action, error=error, error_type=error_type)
