"""Lone enqueues as messages on one long-lived ``EnqueueStream`` call (:class:`AsyncClient`).

The rules are those of :mod:`leasq_sdk.enqueue_stream`; here the callers are coroutines of
one event loop. A caller puts its message on the stream's queue, which grpc's own writer
consumes (so a caller cancelled while its message goes out never leaves a write half done),
and awaits a future that the stream's reader task resolves with the answer of the same id. A
caller cancelled (or out of time) before its message was taken from the queue is not sent,
as a unary call cancelled before it went out.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from leasq.v1 import broker_service_pb2, task_pb2
from leasq_sdk.enqueue_stream import MAX_AGE, TURN_OFF, Answer, Ended, outcome, timed_out
from leasq_sdk.models import EnqueuedTask

Request = broker_service_pb2.EnqueueStreamRequest
#: Opens the stream call on a request iterator (``stub.EnqueueStream(requests, ...)``).
OpenStream = Callable[[AsyncIterator[Request]], Any]


class _Stream:
    """One open stream call, the futures of the calls it has not answered, and its reader."""

    def __init__(self, open_stream: OpenStream, on_end: Callable[[_Stream, Ended], None]) -> None:
        self.opened = time.monotonic()
        self.waiting: dict[int, asyncio.Future[Answer]] = {}
        self.ended: Ended | None = None
        #: Id of the last message handed to grpc (ids rise, and go out in order).
        self.last_sent = 0
        self._requests: asyncio.Queue[Request | None] = asyncio.Queue()
        self._on_end = on_end
        self.call = open_stream(self._take())
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _take(self) -> AsyncIterator[Request]:
        # Nothing is written before the broker took the stream (its headers): a refused
        # stream then ends with its true status, and none of its calls went out.
        await self.call.initial_metadata()
        if self.call.done():
            return
        while (request := await self._requests.get()) is not None:
            if request.id in self.waiting:  # not if its caller gave up before it went out
                self.last_sent = request.id
                yield request

    def send(self, request: Request) -> asyncio.Future[Answer] | None:
        """Queue a message; the future of its answer, or None when the stream has ended."""
        if self.ended is not None:
            return None
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self.waiting[request.id] = future
        self._requests.put_nowait(request)
        return future

    def finish(self) -> None:
        """Send no more; the broker ends the stream once it answered what it has."""
        self._requests.put_nowait(None)

    async def _read(self) -> None:
        ended = Ended(None)
        try:
            async for answer in self.call:
                future = self.waiting.pop(answer.id, None)
                if future is not None and not future.done():
                    future.set_result(answer)
        except grpc.RpcError as error:
            ended = Ended(error)
        finally:
            self.ended = ended
            self._requests.put_nowait(None)
            left, self.waiting = self.waiting, {}
            for call_id, future in left.items():
                if not future.done():
                    future.set_result(ended.of(call_id, self.last_sent))
            self._on_end(self, ended)


class AsyncEnqueueStream:
    """The async client's enqueue stream; see :mod:`leasq_sdk.enqueue_stream`."""

    def __init__(self, open_stream: OpenStream) -> None:
        self._open_stream = open_stream
        self._stream: _Stream | None = None
        self._ids = itertools.count(1)
        self._retired: set[_Stream] = set()
        #: False once the broker refused streams (see TURN_OFF): enqueues go out unary.
        self.enabled = True

    async def send(self, task: task_pb2.TaskSpec, call_timeout: float | None,
                   idempotent: bool) -> EnqueuedTask | None:  # fmt: skip
        """Enqueue ``task`` on the stream: its result, its typed error raised, or ``None``
        when it is to go out as a unary Enqueue."""
        stream = self._current()
        if stream is None:
            return None
        call_id = next(self._ids)
        future = stream.send(Request(id=call_id, task=task))
        if future is None:
            return None
        try:
            async with asyncio.timeout(call_timeout):
                answer = await future
        except TimeoutError:
            raise timed_out() from None
        finally:
            stream.waiting.pop(call_id, None)
        return outcome(answer, idempotent)

    async def close(self) -> None:
        """End the streams; calls waiting on them are answered as at a broken stream. The
        next call opens a new one."""
        streams = [*self._retired, *([self._stream] if self._stream else [])]
        self._stream = None
        for stream in streams:
            stream.call.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stream.reader

    def _current(self) -> _Stream | None:
        if not self.enabled:
            return None
        stream = self._stream
        if stream is not None and time.monotonic() - stream.opened > MAX_AGE:
            self._retire(stream)
            stream = None
        if stream is None:
            stream = self._stream = _Stream(self._open_stream, self._ended)
        return stream

    def _retire(self, stream: _Stream) -> None:
        """Send no more on ``stream``; the broker ends it once it answered what it has."""
        self._retired.add(stream)
        stream.finish()

    def _ended(self, stream: _Stream, ended: Ended) -> None:
        self._retired.discard(stream)
        if self._stream is stream:
            self._stream = None
        if ended.code in TURN_OFF:
            self.enabled = False
