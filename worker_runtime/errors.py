"""Exceptions a handler raises to say what should happen to its task, and the runtime's own.

A handler signals intent by raising: any exception means "retry with backoff", :class:`SkipRetry`
means "retrying cannot help, archive it", :class:`RetryAfter` means "retry, but at this delay".
They are picklable so that a handler in the process pool can raise them too.
"""

from __future__ import annotations


class SkipRetry(Exception):
    """Archive the task now (dead letter) instead of retrying it."""


class RetryAfter(Exception):
    """Retry the task after ``seconds`` instead of the broker's default backoff.

    The attempt still counts against the task's ``max_retry``.
    """

    def __init__(self, seconds: float, message: str = "") -> None:
        if seconds < 0:
            raise ValueError("RetryAfter needs a delay of 0 seconds or more")
        super().__init__(seconds, message)
        self.seconds = float(seconds)
        self.message = message

    def __str__(self) -> str:
        return self.message or f"retry after {self.seconds:g}s"


class TaskTimeout(Exception):
    """The attempt ran past the task's per-attempt timeout."""


class DeadlineExceeded(Exception):
    """The attempt ran past the task's absolute deadline; no later attempt could run."""


class UnknownTaskType(Exception):
    """No handler is registered for the task's type (exact or prefix match)."""


class TaskCanceled(Exception):
    """An operator canceled the task while it ran."""


class RemoteHandlerError(Exception):
    """An exception from a process-pool handler that could not be sent back as itself.

    ``error_type`` keeps the original class name, so the task's ``last_error_type`` still
    names the real exception.
    """

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(error_type, message)
        self.error_type = error_type
        self.message = message

    def __str__(self) -> str:
        return self.message
