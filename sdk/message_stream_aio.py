"""Calls as messages on one long-lived bidirectional gRPC call, for asyncio clients.

Used by :class:`~leasq_sdk.aio.AsyncClient` for ``EnqueueStream`` and by the worker runtime for
``SettleStream``: both kinds of stream tag each request with an ``id`` that its answer echoes.
A caller puts its message on the stream's queue, which grpc's own writer consumes (so a caller
cancelled while its message goes out never leaves a write half done), and awaits a future that
the stream's reader task resolves with the answer of the same id, or with :class:`Ended` when
the stream ended first. A caller cancelled (or out of time) before its message was taken from
the queue is not sent, as a unary call cancelled before it went out.

:class:`StreamCalls` keeps one stream open for its callers: it opens the next one when the last
ended, retires one after :data:`MAX_AGE` seconds (it ends once its answers are in: the broker
ends connections after an hour, giving calls in flight 90 s, which a stream never would), and
turns streams off for good when the broker refuses them (:data:`TURN_OFF`): its callers then
make unary calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from leasq_sdk.enqueue_stream import MAX_AGE, TURN_OFF, Ended

#: Opens the stream call on a request iterator (``stub.EnqueueStream(requests, ...)``).
OpenStream = Callable[[AsyncIterator[Any]], Any]


class MessageStream:
    """One open stream call, the futures of the calls it has not answered, and its reader."""

    def __init__(self, open_stream: OpenStream,
                 on_end: Callable[[MessageStream, Ended], None]) -> None:  # fmt: skip
        self.opened = time.monotonic()
        self.waiting: dict[int, asyncio.Future[Any]] = {}
        self.ended: Ended | None = None
        #: Id of the last message handed to grpc (ids rise, and go out in order).
        self.last_sent = 0
        self._requests: asyncio.Queue[Any] = asyncio.Queue()
        self._on_end = on_end
        self.call = open_stream(self._take())
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _take(self) -> AsyncIterator[Any]:
        # Nothing is written before the broker took the stream (its headers): a refused
        # stream then ends with its true status, and none of its calls went out.
        await self.call.initial_metadata()
        if self.call.done():
            return
        while (request := await self._requests.get()) is not None:
            if request.id in self.waiting:  # not if its caller gave up before it went out
                self.last_sent = request.id
                yield request

    def send(self, request: Any) -> asyncio.Future[Any] | None:
        """Queue a message; the future of its answer, or None when the stream has ended."""
        if self.ended is not None:
            return None
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
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


class StreamCalls:
    """The stream its callers' messages go on, opened again as needed; see the module."""

    def __init__(self, open_stream: OpenStream) -> None:
        self._open_stream = open_stream
        self._stream: MessageStream | None = None
        self._ids = itertools.count(1)
        self._retired: set[MessageStream] = set()
        #: False once the broker refused streams (see TURN_OFF): calls go out unary.
        self.enabled = True

    async def exchange(self, request: Any, wait_s: float | None) -> Any:
        """Send ``request`` (its ``id`` is set here) and wait up to ``wait_s`` seconds: the
        answer, an :class:`Ended` when the stream ended before it, or None when streams are
        off. Raises TimeoutError when no answer came in time."""
        stream = self._current()
        if stream is None:
            return None
        request.id = call_id = next(self._ids)
        future = stream.send(request)
        if future is None:
            return None
        try:
            async with asyncio.timeout(wait_s):
                return await future
        finally:
            stream.waiting.pop(call_id, None)

    async def close(self) -> None:
        """End the streams; calls waiting on them are answered as at a broken stream. The
        next call opens a new one."""
        streams = [*self._retired, *([self._stream] if self._stream else [])]
        self._stream = None
        for stream in streams:
            stream.call.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stream.reader

    def _current(self) -> MessageStream | None:
        if not self.enabled:
            return None
        stream = self._stream
        if stream is not None and time.monotonic() - stream.opened > MAX_AGE:
            self._retire(stream)
            stream = None
        if stream is None:
            stream = self._stream = MessageStream(self._open_stream, self._ended)
        return stream

    def _retire(self, stream: MessageStream) -> None:
        """Send no more on ``stream``; the broker ends it once it answered what it has."""
        self._retired.add(stream)
        stream.finish()

    def _ended(self, stream: MessageStream, ended: Ended) -> None:
        self._retired.discard(stream)
        if self._stream is stream:
            self._stream = None
        if ended.code in TURN_OFF:
            self.enabled = False
