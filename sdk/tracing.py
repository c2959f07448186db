"""W3C trace context in the headers of enqueued tasks, when OpenTelemetry is installed.

At enqueue, the span current in the caller (if any, and valid) is written into the task's
``traceparent`` and ``tracestate`` headers, unless the caller set ``traceparent`` itself; the
worker runtime starts each attempt's span as a child of it, so one trace runs from the code
that enqueued a task to its handler. Only the W3C trace context format is written, whatever
global propagator the application configured: it is what the worker (in any language) reads.

OpenTelemetry is optional (``pip install 'leasq[otel]'``); without it this module does nothing
and costs one ``is None`` test per task.
"""

from __future__ import annotations

from collections.abc import MutableMapping

try:
    from opentelemetry import trace as _trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # pragma: no cover - exercised where OpenTelemetry is not installed
    _trace = None  # type: ignore[assignment]

TRACEPARENT = "traceparent"
_propagator = TraceContextTextMapPropagator() if _trace is not None else None


def inject(headers: MutableMapping[str, str]) -> None:
    """Add the current span's trace context to ``headers`` (a TaskSpec's header map) when
    there is a valid current span and ``headers`` have no ``traceparent``."""
    if _propagator is None or TRACEPARENT in headers:
        return
    if not _trace.get_current_span().get_span_context().is_valid:
        return
    _propagator.inject(headers)
