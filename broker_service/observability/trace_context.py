"""W3C trace context from a producer's gRPC metadata into the headers of the tasks it enqueues.

A producer that traces its calls (an OpenTelemetry gRPC instrumentation) sends ``traceparent``
and ``tracestate`` as call metadata rather than in each task's headers. The Enqueue handlers
:func:`capture` them into a context variable (grpc.aio runs each call in a context of its own),
and :func:`apply` copies them into a task's headers where the producer set no ``traceparent``
itself, so that the worker continues the producer's trace. Nothing is imported from
OpenTelemetry: the broker only carries strings.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from contextvars import ContextVar
from typing import Any

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
# A traceparent is 55 characters (version 00); longer values are not trace context.
_MAX_LENGTH = 512

_incoming: ContextVar[tuple[tuple[str, str], ...]] = ContextVar("leasq_trace_context",
                                                                default=())


def capture(metadata: Iterable[Any] | None) -> None:
    """Keep the call's ``traceparent``/``tracestate`` metadata for :func:`apply`."""
    found: list[tuple[str, str]] = []
    for key, value in metadata or ():
        if (key == TRACEPARENT or key == TRACESTATE) and isinstance(value, str) \
                and len(value) <= _MAX_LENGTH:
            found.append((key, value))
    if any(key == TRACEPARENT for key, _ in found):
        _incoming.set(tuple(found))


def apply(headers: MutableMapping[str, str]) -> None:
    """Add the captured trace context to ``headers`` unless they carry a ``traceparent``."""
    incoming = _incoming.get()
    if incoming and TRACEPARENT not in headers:
        headers.update(incoming)
