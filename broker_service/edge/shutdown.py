"""The shutdown gate: during a graceful shutdown no call ends in CANCELLED that need not.

Once :meth:`ShutdownGate.close` is called, a call that still reaches a handler is answered
UNAVAILABLE at once (a client retries it, on another replica or on this one's successor). Calls
already running finish; those still running when the grace period ends are stopped by
:meth:`ShutdownGate.expire` and answered UNAVAILABLE too, instead of the CANCELLED that the gRPC
server would give them. UNAVAILABLE tells a client "not done here, retry"; only an idempotent call
may be retried safely, and the SDK retries only those.

The gate sits in the handlers that :mod:`leasq_broker.edge.decoding` registers, not in a server
interceptor: an interceptor costs every call a hop and a handler built per call. Health checks
and reflection are registered apart and pass untouched: probes must see NOT_SERVING, not an
error.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeAlias

import grpc
import grpc.aio

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"

Behavior: TypeAlias = Callable[[Any, "grpc.aio.ServicerContext[Any, Any]"], Awaitable[Any]]
CLOSED_MESSAGE = "the broker is shutting down; retry (another replica, or this one once restarted)"
EXPIRED_MESSAGE = ("the broker shut down before this call finished (its grace period ended); "
                   "retry it if it is idempotent")  # fmt: skip


class ShutdownGate:
    """Turns calls refused or cut short by a shutdown into UNAVAILABLE; see the module doc."""

    def __init__(self) -> None:
        self.closed = False
        self._expired = False
        self._running: set[asyncio.Task[Any]] = set()
        # Streaming calls waiting for their client's next message (see StreamRequests).
        self._reading: set[asyncio.Task[Any]] = set()

    def close(self) -> None:
        """Refuse calls from now on (UNAVAILABLE); running ones go on. A streaming call waiting
        for its client's next message stops reading: it answers what it read and ends."""
        self.closed = True
        for task in list(self._reading):
            task.cancel()

    def expire(self) -> None:
        """Stop every call still running; each is answered UNAVAILABLE."""
        self.closed = self._expired = True
        for task in list(self._running):
            task.cancel()

    @property
    def running(self) -> int:
        """Calls whose handler runs now."""
        return len(self._running)

    async def run(self, behavior: Behavior, request: Any, context: Context) -> Any:
        """``behavior(request, context)``, refused once closed and answered UNAVAILABLE when
        :meth:`expire` stops it."""
        if self.closed:
            await context.abort(grpc.StatusCode.UNAVAILABLE, CLOSED_MESSAGE)
        task = asyncio.current_task()
        assert task is not None
        running = self._running
        running.add(task)
        try:
            return await behavior(request, context)
        except asyncio.CancelledError:
            if not self._expired:
                raise
            task.uncancel()
            await context.abort(grpc.StatusCode.UNAVAILABLE, EXPIRED_MESSAGE)
        finally:
            running.discard(task)


class StreamRequests:
    """A streaming call's requests, as its handler reads them, ending early when the gate
    closes: a stream idle between two messages must not hold a shutdown for its whole grace
    period. The handler sees an ordinary end of input, answers what it has read, and returns;
    :attr:`cut` then tells the caller to end the call UNAVAILABLE rather than OK."""

    __slots__ = ("_gate", "_inner", "cut")

    def __init__(self, gate: ShutdownGate, inner: AsyncIterator[Any]) -> None:
        self._gate = gate
        self._inner = inner
        self.cut = False

    def __aiter__(self) -> StreamRequests:
        return self

    async def __anext__(self) -> Any:
        gate = self._gate
        if gate.closed:
            self.cut = True
            raise StopAsyncIteration
        task = asyncio.current_task()
        assert task is not None
        gate._reading.add(task)
        try:
            return await self._inner.__anext__()
        except asyncio.CancelledError:
            if not gate.closed or gate._expired:
                raise
            task.uncancel()
            self.cut = True
            raise StopAsyncIteration from None
        finally:
            gate._reading.discard(task)
