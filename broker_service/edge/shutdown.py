"""The shutdown gate: during a graceful shutdown no call ends in CANCELLED that need not.

Once :meth:`ShutdownGate.close` is called, a call that still reaches a handler is answered
UNAVAILABLE at once (a client retries it, on another replica or on this one's successor). Calls
already running finish; those still running when the grace period ends are stopped by
:meth:`ShutdownGate.expire` and answered UNAVAILABLE too, instead of the CANCELLED that the gRPC
server would give them. UNAVAILABLE tells a client "not done here, retry"; only an idempotent call
may be retried safely, and the SDK retries only those.

Health checks and reflection pass untouched: probes must see NOT_SERVING, not an error.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias, cast

import grpc
import grpc.aio

Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Continuation: TypeAlias = Callable[[grpc.HandlerCallDetails], Awaitable["Handler | None"]]
Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"

_PASS_PREFIXES = ("/grpc.health.", "/grpc.reflection.")
CLOSED_MESSAGE = "the broker is shutting down; retry (another replica, or this one once restarted)"
EXPIRED_MESSAGE = ("the broker shut down before this call finished (its grace period ended); "
                   "retry it if it is idempotent")  # fmt: skip


class ShutdownGate(grpc.aio.ServerInterceptor):
    """Turns calls refused or cut short by a shutdown into UNAVAILABLE; see the module doc."""

    def __init__(self) -> None:
        self.closed = False
        self._expired = False
        self._running: set[asyncio.Task[Any]] = set()

    def close(self) -> None:
        """Refuse calls from now on (UNAVAILABLE); running ones go on."""
        self.closed = True

    def expire(self) -> None:
        """Stop every call still running; each is answered UNAVAILABLE."""
        self.closed = self._expired = True
        for task in list(self._running):
            task.cancel()

    @property
    def running(self) -> int:
        """Calls whose handler runs now."""
        return len(self._running)

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or handler.unary_unary is None or method.startswith(_PASS_PREFIXES):
            return handler
        return self._gated(handler)

    def _gated(self, handler: Handler) -> Handler:
        inner = cast(Callable[[Any, Any], Any], handler.unary_unary)

        async def behavior(request: Any, context: Context) -> Any:
            if self.closed:
                await context.abort(grpc.StatusCode.UNAVAILABLE, CLOSED_MESSAGE)
            task = asyncio.current_task()
            assert task is not None
            self._running.add(task)
            try:
                result = inner(request, context)
                return await result if inspect.isawaitable(result) else result
            except asyncio.CancelledError:
                if not self._expired:
                    raise
                task.uncancel()
                await context.abort(grpc.StatusCode.UNAVAILABLE, EXPIRED_MESSAGE)
            finally:
                self._running.discard(task)

        return grpc.unary_unary_rpc_method_handler(
            behavior, handler.request_deserializer, handler.response_serializer
        )
