"""The task as a handler sees it: a thin, read-only view over the leased protobuf message.

Fields are read from the message on access, so leasing a task costs no conversion work the
handler does not ask for. The cancellation signal is a :class:`threading.Event` (made when first
asked for), because it must reach sync handlers running in pool threads; async handlers are also
cancelled outright.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from leasq.v1 import task_pb2
from leasq_worker.members import Member, PayloadView

Decoder = Callable[[bytes], Any]
# Guards the lazy creation of a task's event against a concurrent cancel from the loop thread.
_EVENT_LOCK = threading.Lock()


class Task(PayloadView):
    """One leased task: identity, payload, options and a cancellation signal.

    ``cancel_event`` is set when the attempt must stop early: its timeout or deadline passed, the
    lease was lost, an operator canceled the task, or the worker is shutting down. Long sync
    handlers should poll :attr:`cancelled` (or wait on ``cancel_event``) and return.
    """

    __slots__ = ("_cancel_reason", "_event", "_members")
    _pb: task_pb2.LeasedTask

    def __init__(self, leased: task_pb2.LeasedTask, decoder: Decoder | None = None) -> None:
        super().__init__(leased, decoder)
        self._members: tuple[Member, ...] | None = None
        self._cancel_reason: str | None = None
        self._event: threading.Event | None = None  # made on first use: most tasks never ask

    @property
    def type(self) -> str:
        """Task type (the handler name), e.g. ``email:welcome``."""
        return self._pb.type

    @property
    def queue(self) -> str:
        """Queue the task was leased from."""
        return self._pb.queue

    @property
    def group(self) -> str:
        """For a task made by aggregation: the group key its members shared; else empty."""
        return self._pb.group

    @property
    def concurrency_key(self) -> str:
        """The task's concurrency key (e.g. a customer id); empty when it has none."""
        return self._pb.concurrency_key

    @property
    def members(self) -> tuple[Member, ...]:
        """For a task made by aggregation: its members (``id``, ``payload``, ``headers``,
        ``enqueued_at``, ``json()``, ``decode()``) in the order they joined the group; empty
        for an ordinary task. Acking or failing the task settles every member at once."""
        if self._members is None:
            decoder = self._decoder
            self._members = tuple(Member(m, decoder) for m in self._pb.members)
        return self._members

    @property
    def retry_count(self) -> int:
        """Failed attempts before this one (0 on the first attempt)."""
        return self._pb.retried

    @property
    def max_retry(self) -> int:
        """When ``retry_count == max_retry``, a failure of this attempt archives the task."""
        return self._pb.max_retry

    @property
    def attempt(self) -> int:
        """This attempt's number, starting at 1."""
        return self._pb.retried + 1

    @property
    def deadline(self) -> datetime | None:
        """The task's absolute deadline, if it has one."""
        return _when(self._pb, "deadline")

    @property
    def attempt_deadline(self) -> datetime | None:
        """When this attempt is stopped: the earlier of lease time + timeout and the deadline."""
        return _when(self._pb, "attempt_deadline")

    @property
    def timeout(self) -> timedelta | None:
        """The task's per-attempt timeout, if it has one."""
        if not self._pb.HasField("timeout"):
            return None
        return self._pb.timeout.ToTimedelta()

    @property
    def enqueued_at(self) -> datetime | None:
        """When the task was first enqueued."""
        return _when(self._pb, "enqueued_at")

    @property
    def cancel_event(self) -> threading.Event:
        """Set when the attempt must stop; a sync handler may ``wait()`` on it."""
        with _EVENT_LOCK:
            if self._event is None:
                self._event = threading.Event()
                if self._cancel_reason is not None:
                    self._event.set()
            return self._event

    @property
    def cancelled(self) -> bool:
        """True once the attempt has been asked to stop."""
        return self._cancel_reason is not None

    @property
    def cancel_reason(self) -> str | None:
        """Why the attempt was asked to stop (``timeout``, ``lease lost``, ...), if it was."""
        return self._cancel_reason

    def request_cancel(self, reason: str) -> None:
        """Raise the cancellation signal (the runtime calls this; the first reason wins)."""
        with _EVENT_LOCK:
            if self._cancel_reason is None:
                self._cancel_reason = reason
            event = self._event
        if event is not None:
            event.set()

    def __repr__(self) -> str:
        return f"Task(id={self.id!r}, type={self.type!r}, queue={self.queue!r})"

    def __getstate__(self) -> tuple[bytes, Decoder | None]:
        # Sent to process-pool children: the event is process-local and is made anew there.
        return self._pb.SerializeToString(), self._decoder

    def __setstate__(self, state: tuple[bytes, Decoder | None]) -> None:
        self.__init__(task_pb2.LeasedTask.FromString(state[0]), state[1])  # type: ignore[misc]


def _when(message: task_pb2.LeasedTask, field: str) -> datetime | None:
    if not message.HasField(field):  # type: ignore[arg-type]
        return None
    stamp = getattr(message, field)
    return datetime.fromtimestamp(stamp.seconds + stamp.nanos / 1e9, tz=UTC)
