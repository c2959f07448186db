"""Leases the worker holds, and the slot arithmetic that keeps it from over-leasing.

All times here are event-loop times (monotonic). A lease's local expiry is counted from an
*anchor* no later than when the broker started the lease (see :func:`lease_anchor`): the worker
therefore believes its lease ends a little before the broker does, whatever the two machines'
wall clocks say. The attempt deadline is carried over the same way, as a span relative to the
broker's own lease expiry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import cast

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import task_pb2
from leasq_worker.task import Task

LOST = "lease lost"
EXPIRED = "lease expired"
CANCELED = "canceled"
SHUTDOWN = "shutdown"
TIMEOUT = "timeout"
MAX_LEASE = 1000  # LeaseRequest.max_tasks limit
#: How long before a waiting Lease's answer arrived the broker may have granted its tasks: the
#: broker answers as soon as it leases, so only the answer's trip and its decoding lie between.
GRANT_TO_ANSWER = 0.25


def lease_anchor(sent: float, received: float) -> float:
    """The instant the worker counts a new lease from.

    For a call that did not wait, the send time (never later than the grant). A long poll may
    have waited for most of its ``wait`` before the broker leased anything: counting from its
    send time would make a lease shorter than the wait look expired on arrival, so the handler's
    outcome would never be reported and the task would run again. The broker answers right after
    it leases, so the grant lies no earlier than ``GRANT_TO_ANSWER`` before the answer arrived.
    """
    return max(sent, received - GRANT_TO_ANSWER)


class HeldLease:
    """One leased task: its lease reference, local expiry and deadline, and its runner."""

    __slots__ = (
        "deadline",
        "expires",
        "queue",
        "runner",
        "stop_reason",
        "task",
        "task_id",
        "token",
    )

    def __init__(self, leased: task_pb2.LeasedTask, task: Task, sent_at: float, lease: float):
        self.task = task
        self.queue = leased.queue
        self.task_id = leased.id
        self.token = leased.lease_token
        self.expires = sent_at + lease
        self.deadline = _local_deadline(leased, sent_at, lease)
        self.runner: asyncio.Task[None] | None = None
        # Why the runtime stopped the attempt (LOST, EXPIRED, CANCELED, SHUTDOWN, TIMEOUT).
        self.stop_reason: str | None = None

    @property
    def ref(self) -> pb.LeaseRef:
        """This lease's LeaseRef, for message constructors only.

        It is a dict: protobuf constructors take dicts for message fields, and build them
        several times faster than they copy a LeaseRef message in (this is per task).
        """
        return cast(
            pb.LeaseRef, {"queue": self.queue, "task_id": self.task_id, "lease_token": self.token}
        )

    @property
    def gone(self) -> bool:
        """True when the lease is no longer ours: nothing may be reported for it."""
        return self.stop_reason in (LOST, EXPIRED)

    def stop(self, reason: str) -> None:
        """Stop the attempt: raise the task's cancel signal and cancel its runner."""
        if self.stop_reason is None or reason in (LOST, EXPIRED):
            self.stop_reason = reason
        self.task.request_cancel(reason)
        if self.runner is not None:
            self.runner.cancel()


def _local_deadline(leased: task_pb2.LeasedTask, sent_at: float, lease: float) -> float | None:
    end = leased.attempt_deadline
    end_seconds = end.seconds
    if not end_seconds:  # unset (an instant in 1970 is not a deadline anyone sets)
        return None
    expiry = leased.lease_expires_at
    span = (end_seconds - expiry.seconds) + (end.nanos - expiry.nanos) * 1e-9
    return sent_at + lease + span


class LeaseBook:
    """Every lease held, from Lease until its outcome is settled or the lease is given up.

    Each lease in the book occupies one of ``slots``: a slot is free again only when the broker
    no longer counts the task as leased to this worker (settled, lost or given up), not when
    the handler returns.
    """

    def __init__(self, slots: Slots | None = None) -> None:
        self._held: dict[str, HeldLease] = {}
        self._slots = slots

    def add(self, held: HeldLease) -> None:
        if held.token not in self._held and self._slots is not None:
            self._slots.held += 1
        self._held[held.token] = held

    def remove(self, held: HeldLease) -> None:
        if self._held.pop(held.token, None) is not None and self._slots is not None:
            self._slots.held -= 1
            self._slots.notify()

    def __iter__(self) -> Iterator[HeldLease]:
        return iter(list(self._held.values()))

    def __len__(self) -> int:
        return len(self._held)


class Slots:
    """Leases held plus tasks asked for in flight never exceed the concurrency.

    A slot is taken by a lease from the moment the worker has it until the broker no longer
    counts it (see :class:`LeaseBook`), and by a thread of a stopped sync handler that still
    runs (``lingering``: the thread pool cannot start another task on it). A Lease (or
    Ack/Nack ``lease_next``) first reserves slots and asks for exactly that many tasks; when the
    answer arrives the reservation is released and the tasks that came occupy slots. So a
    worker never holds more leases than its concurrency, and never leases a task it cannot
    start at once. An Ack or Nack may also ask for the slots of the leases it settles
    (``transfer``): the broker settles them before it leases, in the same call. Until that
    call's answer is in, those leases are ``transferring``: still held, but their slots are
    counted in the reservation instead.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("concurrency must be at least 1")
        self.capacity = capacity
        self.held = 0
        self.transferring = 0
        self.reserved = 0
        self.lingering = 0
        self.closed = False
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []

    @property
    def free(self) -> int:
        return 0 if self.closed else max(0, self._headroom())

    def _headroom(self) -> int:
        taken = self.held - self.transferring + self.reserved + self.lingering
        return self.capacity - taken

    def reserve(self, most: int | None = None, *, transfer: int = 0) -> int:
        """Reserve free slots (all, or at most ``most``) for one lease request; how many.

        ``transfer``: slots of leases that the same call settles before it leases, added to
        the free ones. Never more than one Lease call may ask for (1,000).
        """
        available = 0 if self.closed else max(0, self._headroom() + transfer)
        count = min(available, MAX_LEASE if most is None else max(0, min(most, MAX_LEASE)))
        self.reserved += count
        self.transferring += transfer
        return count

    def transferred(self, count: int) -> None:
        """The answer to a call that settled ``count`` transferred leases is in (those it
        settled have left the book; any it did not are held again)."""
        self.transferring -= count
        self.notify()

    def unreserve(self, count: int) -> None:
        self.reserved -= count
        self.notify()

    def linger(self, change: int) -> None:
        """A stopped sync handler's thread runs on (+1), or has finished at last (-1)."""
        self.lingering += change
        self.notify()

    def close(self) -> None:
        """Lease nothing more (shutdown)."""
        self.closed = True
        self.notify()

    def notify(self) -> None:
        """Wake whoever waits in :meth:`wait_until` and whose condition now holds.

        The conditions are checked here, not by waking every waiter to check its own: slots
        change several times per batch of tasks (once per settled lease), and a wake-up that
        finds the condition still false is a wasted turn of the event loop.
        """
        if not self._waiters:
            return
        waiting = []
        for condition, waiter in self._waiters:
            if waiter.done():
                continue
            if condition():
                waiter.set_result(None)
            else:
                waiting.append((condition, waiter))
        self._waiters = waiting

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        """Return once ``condition()`` holds, re-checked at each :meth:`notify` (whoever
        changes what the condition reads must call it)."""
        while not condition():
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append((condition, waiter))
            try:
                await waiter
            finally:
                waiter.cancel()  # a no-op once resolved; drops a waiter cancelled from outside
