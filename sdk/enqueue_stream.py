"""Lone enqueues as messages on one long-lived ``EnqueueStream`` call (sync client).

A service that enqueues one task per request, each awaited in turn, pays a whole unary call
per task; a message on an open stream costs both sides about half of that (see
``docs/sdk-enqueue.md``). So a client sends every enqueue that goes out *alone* (the
coalescer's lone calls; batches still go as ``EnqueueBatch``) on a stream it opens at its
first enqueue and keeps, each message tagged with an id that its answer echoes.

What a caller sees is what a unary ``Enqueue`` gives it: the task, or the same typed error;
its deadline holds. When the stream cannot carry a call, the call goes out as a unary
``Enqueue`` instead (:func:`outcome` answers ``None``):

- the broker refused the stream before reading it: it has no ``EnqueueStream`` (an older
  broker) or the token may not use it (a token limited to queue patterns): the client stops
  using streams (:data:`TURN_OFF`); for a missing or rejected token, the unary call fails as
  it would have anyway;
- the stream ended before the call's message went out (a broker restart that the client
  learnt of only now): the call goes out unary, task_id or not, and so waits for the broker
  as any call does;
- the stream broke (UNAVAILABLE, CANCELLED: a broker restart, a lost connection) before the
  call's answer, or Redis was unreachable: a call with a ``task_id`` is sent again by unary
  ``Enqueue``, which retries it until its deadline; one without is answered with the error
  (it may have been enqueued), exactly as a unary call without a task_id would be.

A stream takes new messages for :data:`MAX_AGE` seconds, then the next call opens a new one
and the old one ends once its answers are in: the broker ends connections after an hour,
giving calls in flight 90 s to finish, which a stream never would.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc

from leasq.v1 import broker_service_pb2, task_pb2
from leasq_sdk.convert import enqueued_task
from leasq_sdk.errors import BrokerUnavailable, RpcTimeout, from_item_error, from_rpc_error
from leasq_sdk.models import EnqueuedTask

#: Codes a stream ends with before the broker read any of its messages: each of its calls can
#: go out again as a unary Enqueue, task_id or not.
NOT_READ = frozenset({
    grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.RESOURCE_EXHAUSTED,
})  # fmt: skip
#: Of those, the ones after which the client sends every enqueue as a unary call.
TURN_OFF = frozenset({grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.PERMISSION_DENIED})
#: Seconds a stream takes new messages before the client opens the next one.
MAX_AGE = 60.0
_UNAVAILABLE = grpc.StatusCode.UNAVAILABLE.value[0]


@dataclass(frozen=True, slots=True)
class Ended:
    """A call's stream ended before its answer came: how (``error`` None: the stream ended
    cleanly, or the client closed it), and whether the call's message had been handed to grpc
    to send (if not, the broker never saw it)."""

    error: grpc.RpcError | None
    sent: bool = True

    def of(self, call_id: int, last_sent: int) -> Ended:
        """How the stream ended for the call ``call_id`` (ids go out in order, up to
        ``last_sent``)."""
        return self if call_id <= last_sent else Ended(self.error, sent=False)

    @property
    def code(self) -> grpc.StatusCode | None:
        code = self.error.code() if self.error is not None else None
        return code if isinstance(code, grpc.StatusCode) else None


Answer = broker_service_pb2.EnqueueStreamResponse | Ended


def outcome(answer: Answer, idempotent: bool) -> EnqueuedTask | None:
    """The call's task, or the typed error raised; ``None``: send it as a unary Enqueue."""
    if isinstance(answer, Ended):
        if not answer.sent or answer.code in NOT_READ or idempotent:
            return None
        if answer.error is None:
            raise BrokerUnavailable("the enqueue stream ended before this call was answered "
                                    "(the task may or may not have been enqueued)",
                                    code=grpc.StatusCode.UNAVAILABLE)  # fmt: skip
        raise from_rpc_error(answer.error)
    if answer.HasField("error"):
        if idempotent and answer.error.code == _UNAVAILABLE:
            return None
        raise from_item_error(answer.error)
    return enqueued_task(answer.task)


def timed_out() -> RpcTimeout:
    return RpcTimeout("no answer within the call's deadline (the task may or may not have been "
                      "enqueued)", code=grpc.StatusCode.DEADLINE_EXCEEDED)  # fmt: skip


@dataclass(slots=True, eq=False)
class _Waiting:
    """One call waiting for its answer."""

    answered: threading.Event = field(default_factory=threading.Event)
    answer: Answer | None = None


#: Opens the stream: the request iterator in, the call (an iterator of answers) out.
OpenStream = Callable[[Iterator[broker_service_pb2.EnqueueStreamRequest]], Any]


class _Stream:
    """One open stream: the queue its requests are taken from, and who waits for an answer."""

    def __init__(self, open_stream: OpenStream, on_end: Callable[[_Stream, Ended], None]) -> None:
        self.opened = time.monotonic()
        self.waiting: dict[int, _Waiting] = {}
        self.ended: Ended | None = None
        #: Id of the last message handed to grpc (ids rise, and go out in order).
        self.last_sent = 0
        self._lock = threading.Lock()
        self._requests: queue.SimpleQueue[broker_service_pb2.EnqueueStreamRequest | None] = (
            queue.SimpleQueue())
        self._on_end = on_end
        self._opened = threading.Event()
        self._call = open_stream(self._take())
        self._opened.set()  # grpc's thread may already be in _take, waiting for the call
        self._reader = threading.Thread(target=self._read, name="leasq-enqueue-stream",
                                        daemon=True)  # fmt: skip
        self._reader.start()

    def _take(self) -> Iterator[broker_service_pb2.EnqueueStreamRequest]:
        # Nothing is written before the broker took the stream (its headers): a refused
        # stream then ends with its true status, and none of its calls went out.
        self._opened.wait()
        self._call.initial_metadata()
        if self._call.done():
            return
        while (request := self._requests.get()) is not None:
            with self._lock:
                if request.id not in self.waiting:  # its caller gave up before it went out
                    continue
                self.last_sent = request.id
            yield request

    def send(self, call_id: int, task: task_pb2.TaskSpec) -> _Waiting | None:
        """Queue a message; None when the stream has already ended."""
        waiting = _Waiting()
        with self._lock:
            if self.ended is not None:
                return None
            self.waiting[call_id] = waiting
        self._requests.put(broker_service_pb2.EnqueueStreamRequest(id=call_id, task=task))
        return waiting

    def forget(self, call_id: int) -> None:
        with self._lock:
            self.waiting.pop(call_id, None)

    def finish(self) -> None:
        """Send no more; the broker ends the stream once it answered what it has."""
        self._requests.put(None)

    def cancel(self) -> None:
        self._call.cancel()

    def _read(self) -> None:
        ended = Ended(None)
        try:
            for answer in self._call:
                with self._lock:
                    waiting = self.waiting.pop(answer.id, None)
                if waiting is not None:
                    waiting.answer = answer
                    waiting.answered.set()
        except grpc.RpcError as error:
            ended = Ended(error)
        finally:
            self._requests.put(None)
            with self._lock:
                self.ended = ended
                left, self.waiting = self.waiting, {}
            for call_id, waiting in left.items():
                waiting.answer = ended.of(call_id, self.last_sent)
                waiting.answered.set()
            self._on_end(self, ended)


class EnqueueStream:
    """The sync client's enqueue stream (thread-safe); see the module doc."""

    def __init__(self, open_stream: OpenStream) -> None:
        self._open_stream = open_stream
        self._lock = threading.Lock()
        self._stream: _Stream | None = None
        self._ids = itertools.count(1)
        self._closed = False
        #: False once the broker refused streams (see TURN_OFF): enqueues go out unary.
        self.enabled = True

    def send(self, task: task_pb2.TaskSpec, timeout: float | None,
             idempotent: bool) -> EnqueuedTask | None:  # fmt: skip
        """Enqueue ``task`` on the stream: its result, its typed error raised, or ``None``
        when it is to go out as a unary Enqueue."""
        stream = self._current()
        if stream is None:
            return None
        call_id = next(self._ids)
        waiting = stream.send(call_id, task)
        if waiting is None:
            return None
        if not waiting.answered.wait(timeout):
            stream.forget(call_id)
            if waiting.answer is None:
                raise timed_out()
        assert waiting.answer is not None
        return outcome(waiting.answer, idempotent)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            stream, self._stream = self._stream, None
        if stream is not None:
            stream.cancel()

    def _current(self) -> _Stream | None:
        with self._lock:
            if self._closed or not self.enabled:
                return None
            stream = self._stream
            if stream is not None and time.monotonic() - stream.opened > MAX_AGE:
                stream.finish()
                stream = None
            if stream is None:
                stream = self._stream = _Stream(self._open_stream, self._ended)
            return stream

    def _ended(self, stream: _Stream, ended: Ended) -> None:
        with self._lock:
            if self._stream is stream:
                self._stream = None
            if ended.code in TURN_OFF:
                self.enabled = False
