"""Coalescing of concurrent one-task enqueues into ``EnqueueBatch`` calls (sync client).

A web service enqueues one task per request from many threads (or coroutines) at once; one RPC
per task caps it near the gRPC round-trip rate, and most of each call's cost is per call, not
per task. A client therefore coalesces: per *lane* (calls that can share a batch: the same
deadline and the same retry class, see :func:`lane_key`)

- when no call of the lane is in flight, a call goes out at once, alone, as a plain
  ``Enqueue``: an idle client adds no delay (and a dictionary lookup of bookkeeping);
- while a call is in flight, further calls wait and go out together as the next call when it
  returns (``Enqueue`` for one, ``EnqueueBatch`` for more; the async client has up to
  :data:`MAX_IN_FLIGHT` calls in flight, see :mod:`leasq_sdk.coalescing_aio`), or at once when
  they reach :data:`MAX_ITEMS` tasks or :data:`MAX_BYTES`; an optional ``linger`` (at most
  :data:`MAX_LINGER`) lets that next batch wait a little longer for company.

Each caller still gets exactly its own outcome: its :class:`EnqueuedTask` once the broker
confirmed *that* task, or the typed exception a lone ``enqueue`` raises for it (an item refused
inside a batch comes back as the same class, with the field named ``task.…``). A call whose
whole batch failed (broker unreachable, deadline) raises that error, as a lone call would.

Deadlines hold per call: a batch is sent with the deadline of its earliest caller, and a call
whose deadline passed while it waited is answered :class:`RpcTimeout` without being sent.
The sync client needs no thread of its own: the caller whose call returns hands the waiting
calls to one of their threads, which sends them.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc

from leasq.v1 import broker_service_pb2
from leasq_sdk.batch import MAX_BATCH
from leasq_sdk.convert import enqueued_task
from leasq_sdk.errors import LeasqError, RpcTimeout, from_item_error
from leasq_sdk.models import EnqueuedTask

#: Calls of one lane in flight at once in the async client (the sync client keeps one).
MAX_IN_FLIGHT = 2
#: Most tasks in one coalesced call (the broker's EnqueueBatch limit).
MAX_ITEMS = MAX_BATCH
#: Encoded task bytes past which waiting calls go out without waiting for the call in flight.
MAX_BYTES = 4 * 1024 * 1024
#: Longest linger a client accepts, in seconds.
MAX_LINGER = 0.001
#: Idle lanes kept for reuse; past this many lanes, a lane is dropped when it goes idle (a
#: caller passing a computed rpc_timeout on every call would otherwise add one per call).
KEPT_LANES = 16

Outcome = EnqueuedTask | LeasqError
#: (deadline in seconds or None, every task has a task_id): calls of one key share batches.
LaneKey = tuple[float | None, bool]
_ITEM_FIELD = re.compile(r"^tasks\[\d+\]")


def check_linger(linger: float) -> float:
    """The linger, or ValueError for one outside 0 .. MAX_LINGER."""
    if not 0 <= linger <= MAX_LINGER:
        raise ValueError(f"coalesce_linger must be between 0 and {MAX_LINGER} s (got {linger})")
    return linger


def lane_key(timeout: float | None, idempotent: bool) -> LaneKey:
    """Calls with another deadline or retry class never share a batch: a batch is sent with
    one deadline, and only a batch whose every task has a task_id may be retried."""
    return timeout, idempotent


@dataclass(slots=True, eq=False)
class Item:
    """One waiting call: its task, when it must be answered by, and (once known) its outcome."""

    request: broker_service_pb2.EnqueueRequest
    deadline: float | None
    size: int
    outcome: Outcome | None = None


@dataclass(slots=True)
class Lane:
    """The calls of one lane key: how many batches are in flight and who waits."""

    in_flight: int = 0
    waiting: list[Item] = field(default_factory=list)
    size: int = 0
    #: An async sender is started and has not yet taken what waits (it takes it all).
    sender_due: bool = False

    def add(self, item: Item) -> bool:
        """Queue a call; True when the waiting calls should go out now (a limit is reached)."""
        self.waiting.append(item)
        self.size += item.size
        return len(self.waiting) >= MAX_ITEMS or self.size >= MAX_BYTES

    def take(self, limit: int = MAX_ITEMS) -> list[Item]:
        """The waiting calls (at most ``limit``, oldest first), as the next batch."""
        if len(self.waiting) <= limit:
            batch, self.waiting, self.size = self.waiting, [], 0
        else:
            batch, self.waiting = self.waiting[:limit], self.waiting[limit:]
            self.size -= sum(item.size for item in batch)
        return batch


def deadline_of(timeout: float | None) -> float | None:
    """The monotonic instant a call with this timeout must be answered by."""
    return None if timeout is None else time.monotonic() + timeout


def ready(batch: list[Item]) -> tuple[list[Item], float | None]:
    """The calls still worth sending (the others answered RpcTimeout) and their call timeout:
    what is left of the earliest deadline among them."""
    now = time.monotonic()
    live: list[Item] = []
    for item in batch:
        if item.deadline is not None and item.deadline <= now:
            item.outcome = RpcTimeout("no answer within the call's deadline (it was not sent)",
                                      code=grpc.StatusCode.DEADLINE_EXCEEDED)  # fmt: skip
        else:
            live.append(item)
    deadlines = [item.deadline for item in live if item.deadline is not None]
    return live, (min(deadlines) - now if deadlines else None)


def batch_request(batch: list[Item]) -> broker_service_pb2.EnqueueBatchRequest:
    return broker_service_pb2.EnqueueBatchRequest(tasks=[item.request.task for item in batch])


def record(batch: list[Item], response: broker_service_pb2.EnqueueBatchResponse) -> None:
    """Give each call its item's outcome (an item refusal as the class a lone call raises)."""
    answers = response.results
    for position, item in enumerate(batch):
        if position >= len(answers):
            item.outcome = LeasqError("the broker returned no result for this task")
        elif answers[position].HasField("error"):
            error = from_item_error(answers[position].error)
            error.field = _ITEM_FIELD.sub("task", error.field)
            item.outcome = error
        else:
            item.outcome = enqueued_task(answers[position].task)


def fail(batch: list[Item], error: LeasqError) -> None:
    """Give each call of a batch that failed as a whole its own copy of the error."""
    for item in batch:
        item.outcome = copy_error(error)


def copy_error(error: LeasqError) -> LeasqError:
    """A fresh instance: one exception object raised in several threads would share (and
    garble) its traceback."""
    return type(error)(error.details, code=error.code, reason=error.reason, field=error.field,
                       metadata=error.metadata)  # fmt: skip


def result(outcome: Outcome | None) -> EnqueuedTask:
    if isinstance(outcome, EnqueuedTask):
        return outcome
    raise outcome if outcome is not None else LeasqError("the call was not answered")


#: Sends one task (``Enqueue``) and returns its result, raising the typed error.
SendOne = Callable[[broker_service_pb2.EnqueueRequest, float | None, bool], EnqueuedTask]
#: Sends a batch (``EnqueueBatch``); raises the typed error of a call that failed as a whole.
SendMany = Callable[
    [broker_service_pb2.EnqueueBatchRequest, float | None, bool],
    broker_service_pb2.EnqueueBatchResponse,
]


@dataclass(slots=True, eq=False)
class _ThreadItem(Item):
    """A waiting call of the sync client: the event its thread sleeps on, and the batch it is
    asked to send when it is woken to lead."""

    woken: threading.Event = field(default_factory=threading.Event)
    lead: list[Item] | None = None


class Coalescer:
    """Coalescing for the thread-safe sync :class:`leasq_sdk.Client`."""

    def __init__(self, send_one: SendOne, send_many: SendMany, linger: float = 0.0) -> None:
        self._send_one = send_one
        self._send_many = send_many
        self._linger = check_linger(linger)
        self._lock = threading.Lock()
        self._lanes: dict[LaneKey, Lane] = {}

    def enqueue(self, request: broker_service_pb2.EnqueueRequest, timeout: float | None,
                idempotent: bool) -> EnqueuedTask:  # fmt: skip
        """Send ``request`` (alone if nothing is in flight) and return its result or raise."""
        key = lane_key(timeout, idempotent)
        with self._lock:
            lane = self._lanes.get(key)
            if lane is None:
                lane = self._lanes[key] = Lane()
            if lane.in_flight == 0:
                lane.in_flight = 1
                item = None
            else:
                item = _ThreadItem(request, deadline_of(timeout), request.ByteSize())
                if lane.add(item):
                    lane.in_flight += 1
                    item.lead = lane.take()
        if item is None:
            try:
                return self._send_one(request, timeout, idempotent)
            finally:
                self._finished(key, lane)
        if item.lead is None:
            item.woken.wait()
        if item.lead is not None:
            self._lead(key, lane, item.lead)
        return result(item.outcome)

    def _lead(self, key: LaneKey, lane: Lane, batch: list[Item]) -> None:
        """Send a batch on behalf of its callers, answer them, pass the lane on."""
        try:
            if self._linger:
                time.sleep(self._linger)
                with self._lock:
                    batch += lane.take(MAX_ITEMS - len(batch))
            self._send(batch, key[1])
        finally:
            for item in batch:
                if item.outcome is None:
                    item.outcome = LeasqError("the batch of this call was not sent")
                if isinstance(item, _ThreadItem):
                    item.lead = None
                    item.woken.set()
            self._finished(key, lane)

    def _send(self, batch: list[Item], idempotent: bool) -> None:
        live, timeout = ready(batch)
        if len(live) == 1:
            try:
                live[0].outcome = self._send_one(live[0].request, timeout, idempotent)
            except LeasqError as error:
                live[0].outcome = error
        elif live:
            try:
                record(live, self._send_many(batch_request(live), timeout, idempotent))
            except LeasqError as error:
                fail(live, error)

    def _finished(self, key: LaneKey, lane: Lane) -> None:
        """One call of the lane returned: hand the waiting calls to one of their threads."""
        with self._lock:
            lane.in_flight -= 1
            if lane.in_flight or not lane.waiting:
                if not lane.in_flight and len(self._lanes) > KEPT_LANES:
                    self._lanes.pop(key, None)
                return
            lane.in_flight = 1
            batch = lane.take()
            leader = batch[0]
            assert isinstance(leader, _ThreadItem)
            leader.lead = batch
        leader.woken.set()
