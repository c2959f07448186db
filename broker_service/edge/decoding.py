"""Registers the servicers' methods with a request parser that refuses bytes it cannot read.

With the generated ``add_*_to_server``, a request body that is not valid protobuf makes grpc
answer UNKNOWN ("Unexpected DecodeError") and log a traceback per call. Here every method's
parser turns such a body into a marker that its handler answers with INVALID_ARGUMENT (ErrorInfo
INVALID_FIELD, field "request"), and the broker logs at most one warning per interval, with a
count. Method names and message types come from the service descriptors, so a new RPC needs no
change here; a valid request costs one type check on top of the generated handler. The
handlers also pass every call through the broker's :class:`ShutdownGate`, count it by status
code with its duration (:mod:`leasq_broker.observability.rpc`), and give Enqueue calls the
trace context of their metadata (:mod:`leasq_broker.observability.trace_context`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import grpc
import grpc.aio
import structlog
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import DecodeError

from leasq_broker.edge.shutdown import CLOSED_MESSAGE, ShutdownGate, StreamRequests
from leasq_broker.edge.status import to_rich_status
from leasq_broker.errors import InvalidField
from leasq_broker.observability import rpc, trace_context

log = structlog.get_logger(__name__)

LOG_EVERY_S = 60.0
# Calls whose tasks take the trace context of the call's metadata (see trace_context).
TRACED_METHODS = frozenset({"leasq.v1.BrokerService.Enqueue",
                            "leasq.v1.BrokerService.EnqueueBatch"})
Behavior = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]
#: A bidirectional method: reads its requests from the iterator, writes through the context.
StreamBehavior = Callable[[AsyncIterator[Any], grpc.aio.ServicerContext[Any, Any]],
                          Awaitable[None]]


class Undecodable:
    """Stands in for a request whose bytes are not a valid message of the method's type."""

    __slots__ = ("error", "method")

    def __init__(self, method: str, error: Exception) -> None:
        self.method = method
        self.error = error


class RefusalLog:
    """Counts refused bodies and logs one warning per ``every_s`` seconds at most."""

    def __init__(self, every_s: float = LOG_EVERY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._every_s = every_s
        self._clock = clock
        self._count = 0
        self._next_at = float("-inf")

    def note(self, request: Undecodable) -> None:
        self._count += 1
        now = self._clock()
        if now >= self._next_at:
            log.warning("requests that are not valid protobuf refused", count=self._count,
                        last_method=request.method, last_error=str(request.error)[:200],
                        log_interval_s=self._every_s)
            self._count = 0
            self._next_at = now + self._every_s


def register(
    server: grpc.aio.Server, services: Sequence[tuple[object, ServiceDescriptor]],
    gate: ShutdownGate, refusals: RefusalLog | None = None,
) -> None:
    """Add each ``(servicer, service descriptor)``'s methods (unary or bidirectional) to
    ``server``."""
    refusals = refusals or RefusalLog()
    for servicer, service in services:
        handlers = {
            method.name: _handler(servicer, method, gate, refusals) for method in service.methods
        }
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service.full_name, handlers),)
        )
        server.add_registered_method_handlers(service.full_name, handlers)


def _parser(method: MethodDescriptor) -> Callable[[bytes], Any]:
    """The method's request parser: the message, or an :class:`Undecodable` stand-in."""
    request_type = message_factory.GetMessageClass(method.input_type)
    name = method.full_name

    def parse(data: bytes) -> Any:
        try:
            return request_type.FromString(data)
        except DecodeError as error:
            return Undecodable(name, error)

    return parse


def _handler(
    servicer: object, method: MethodDescriptor, gate: ShutdownGate, refusals: RefusalLog
) -> grpc.RpcMethodHandler[Any, Any]:
    if method.client_streaming != method.server_streaming:
        raise ValueError(f"{method.full_name}: only unary and bidirectional methods are supported")
    if method.client_streaming:
        return _stream_handler(servicer, method, gate, refusals)
    response_type = message_factory.GetMessageClass(method.output_type)
    behavior: Behavior = getattr(servicer, method.name)
    name = method.full_name
    record = rpc.recorder(name)
    traced = name in TRACED_METHODS
    parse = _parser(method)

    async def handle(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        started = time.perf_counter()
        failed: BaseException | None = None
        try:
            if request.__class__ is Undecodable:
                refusals.note(request)
                await context.abort_with_status(to_rich_status(InvalidField(
                    "request", f"the body is not a valid {method.input_type.full_name} message "
                    "(protobuf could not parse it)",
                )))
            if traced:
                trace_context.capture(context.invocation_metadata())
            return await gate.run(behavior, request, context)
        except BaseException as exc:  # an abort too: its code is read from the context
            failed = exc
            raise
        finally:
            record(context, started, failed)

    return grpc.unary_unary_rpc_method_handler(
        handle, request_deserializer=parse,
        response_serializer=response_type.SerializeToString,
    )


def _stream_handler(
    servicer: object, method: MethodDescriptor, gate: ShutdownGate, refusals: RefusalLog
) -> grpc.RpcMethodHandler[Any, Any]:
    """A bidirectional method: the handler reads requests through :class:`RequestsUntil`,
    which ends the input at a message that is not valid protobuf or when the broker starts
    shutting down; the handler answers what it read, then the call ends INVALID_ARGUMENT or
    UNAVAILABLE respectively."""
    response_type = message_factory.GetMessageClass(method.output_type)
    behavior: StreamBehavior = getattr(servicer, method.name)
    record = rpc.recorder(method.full_name)
    traced = method.full_name in TRACED_METHODS
    parse = _parser(method)

    async def handle(requests: AsyncIterator[Any],
                     context: grpc.aio.ServicerContext[Any, Any]) -> None:  # fmt: skip
        started = time.perf_counter()
        failed: BaseException | None = None
        try:
            if traced:
                trace_context.capture(context.invocation_metadata())
            until = RequestsUntil(StreamRequests(gate, requests))
            await gate.run(behavior, until, context)
            if until.undecodable is not None:
                refusals.note(until.undecodable)
                await context.abort_with_status(to_rich_status(InvalidField(
                    "request", f"a message is not a valid {method.input_type.full_name} "
                    "(protobuf could not parse it); the stream ends after answering the "
                    "messages before it",
                )))
            if until.requests.cut:
                await context.abort(grpc.StatusCode.UNAVAILABLE, CLOSED_MESSAGE)
        except BaseException as exc:  # an abort too: its code is read from the context
            failed = exc
            raise
        finally:
            record(context, started, failed)

    return grpc.stream_stream_rpc_method_handler(
        handle, request_deserializer=parse,
        response_serializer=response_type.SerializeToString,
    )


class RequestsUntil:
    """A stream's requests up to the first one that is not valid protobuf (kept aside)."""

    __slots__ = ("requests", "undecodable")

    def __init__(self, requests: StreamRequests) -> None:
        self.requests = requests
        self.undecodable: Undecodable | None = None

    def __aiter__(self) -> RequestsUntil:
        return self

    async def __anext__(self) -> Any:
        if self.undecodable is not None:
            raise StopAsyncIteration
        request = await self.requests.__anext__()
        if request.__class__ is Undecodable:
            self.undecodable = request
            raise StopAsyncIteration
        return request
