"""Coalescing of concurrent one-task enqueues for :class:`leasq_sdk.AsyncClient`.

The rules are those of :mod:`leasq_sdk.coalescing`; here the callers are coroutines of one
event loop, so no lock is needed. A call made while nothing of its lane is in flight is awaited
by its own coroutine, as a plain ``Enqueue``. The calls that wait meanwhile are sent by tasks
of the client, batch after batch, until none wait; such a task is never cancelled with a
caller. Unlike the sync client, up to :data:`MAX_IN_FLIGHT` calls of a lane are in flight: a
call that finds fewer starts a sender that runs once the current loop turn is over, and so
takes every call made in that turn (the callers a returning batch resumed come back in one
turn). The client then encodes and decodes one batch while the broker runs the other, where
one in flight left each side idle half the time: about 1.5x the rate with 64 callers.
A caller that is cancelled while it waits is dropped from its batch before it is sent (once
sent, its task may be enqueued, as with a cancelled lone call).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from leasq.v1 import broker_service_pb2
from leasq_sdk.coalescing import (
    KEPT_LANES,
    MAX_IN_FLIGHT,
    MAX_ITEMS,
    Item,
    Lane,
    LaneKey,
    batch_request,
    check_linger,
    deadline_of,
    fail,
    lane_key,
    ready,
    record,
    result,
)
from leasq_sdk.errors import LeasqError
from leasq_sdk.models import EnqueuedTask

#: Sends one task (``Enqueue``) and returns its result, raising the typed error.
SendOne = Callable[
    [broker_service_pb2.EnqueueRequest, float | None, bool], Awaitable[EnqueuedTask]
]
#: Sends a batch (``EnqueueBatch``); raises the typed error of a call that failed as a whole.
SendMany = Callable[
    [broker_service_pb2.EnqueueBatchRequest, float | None, bool],
    Awaitable[broker_service_pb2.EnqueueBatchResponse],
]


@dataclass(slots=True, eq=False)
class _WaitingCall(Item):
    """A waiting coroutine's call and the future it awaits (cancelled if the caller is)."""

    answered: asyncio.Future[None] = field(default_factory=asyncio.Future)


class AsyncCoalescer:
    """Coalescing for one :class:`AsyncClient` (and so one event loop)."""

    def __init__(self, send_one: SendOne, send_many: SendMany, linger: float = 0.0) -> None:
        self._send_one = send_one
        self._send_many = send_many
        self._linger = check_linger(linger)
        self._lanes: dict[LaneKey, Lane] = {}
        self._senders: set[asyncio.Task[None]] = set()

    async def enqueue(self, request: broker_service_pb2.EnqueueRequest,
                      call_timeout: float | None, idempotent: bool) -> EnqueuedTask:  # fmt: skip
        """Send ``request`` (alone if nothing is in flight) and return its result or raise."""
        key = lane_key(call_timeout, idempotent)
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = Lane()
        if lane.in_flight == 0:
            lane.in_flight = 1
            try:
                return await self._send_one(request, call_timeout, idempotent)
            finally:
                self._finished(key, lane)
        call = _WaitingCall(request, deadline_of(call_timeout), request.ByteSize())
        if lane.add(call):
            lane.in_flight += 1
            self._start(key, lane, lane.take())
        elif lane.in_flight < MAX_IN_FLIGHT and not lane.sender_due:
            lane.in_flight += 1
            lane.sender_due = True
            self._start(key, lane, None)
        await call.answered  # cancelling the caller cancels this future: the batch skips it
        return result(call.outcome)

    def _finished(self, key: LaneKey, lane: Lane) -> None:
        """A call of the lane returned: send what waits, in a task of the client."""
        lane.in_flight -= 1
        if lane.waiting and not lane.sender_due and lane.in_flight < MAX_IN_FLIGHT:
            lane.in_flight += 1
            self._start(key, lane, lane.take())
        elif not lane.in_flight and len(self._lanes) > KEPT_LANES:
            self._lanes.pop(key, None)

    def _start(self, key: LaneKey, lane: Lane, batch: list[Item] | None) -> None:
        """A sender of ``batch``; of what waits when it first runs, for ``None``."""
        sender = asyncio.get_running_loop().create_task(self._drain(key, lane, batch))
        self._senders.add(sender)
        sender.add_done_callback(self._senders.discard)

    async def _drain(self, key: LaneKey, lane: Lane, first: list[Item] | None) -> None:
        """Send batches of the lane until no call waits or another sender is due to."""
        batch: list[Item] = []
        try:
            if first is None:
                lane.sender_due = False
                first = lane.take()
            batch = first
            while batch:
                if self._linger:
                    await asyncio.sleep(self._linger)
                    batch += lane.take(MAX_ITEMS - len(batch))
                await self._send([c for c in batch if not _abandoned(c)], key[1])
                batch = [] if lane.sender_due else lane.take()
        finally:
            for call in batch:
                if call.outcome is None:
                    call.outcome = LeasqError("the batch of this call was not sent")
                _answer(call)
            self._finished(key, lane)

    async def _send(self, batch: list[Item], idempotent: bool) -> None:
        live, timeout = ready(batch)
        try:
            if len(live) == 1:
                try:
                    live[0].outcome = await self._send_one(live[0].request, timeout, idempotent)
                except LeasqError as error:
                    live[0].outcome = error
            elif live:
                try:
                    response = await self._send_many(batch_request(live), timeout, idempotent)
                    record(live, response)
                except LeasqError as error:
                    fail(live, error)
        finally:
            for call in batch:
                _answer(call)


def _abandoned(call: Item) -> bool:
    return isinstance(call, _WaitingCall) and call.answered.cancelled()


def _answer(call: Item) -> None:
    if isinstance(call, _WaitingCall) and not call.answered.done():
        call.answered.set_result(None)
