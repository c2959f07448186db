"""W3C trace context in the headers of enqueued tasks, when the application uses OpenTelemetry.

At enqueue, the span current in the caller (if any, and valid) is written into the task's
``traceparent`` and ``tracestate`` headers, unless the caller set ``traceparent`` itself; the
worker runtime starts each attempt's span as a child of it, so one trace runs from the code
that enqueued a task to its handler. Only the W3C trace context format is written, whatever
global propagator the application configured: it is what the worker (in any language) reads.

OpenTelemetry is optional (``pip install 'leasq[otel]'``) and never imported here: a span can
only be current once the application imported ``opentelemetry.trace``, so that module is
looked up in ``sys.modules`` at each enqueue (a dictionary lookup). Without it nothing is
added, and importing the SDK stays as fast as without tracing.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import MutableMapping
from typing import Any

TRACEPARENT = "traceparent"


@functools.cache
def _propagator() -> Any:
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator()


def inject(headers: MutableMapping[str, str]) -> None:
    """Add the current span's trace context to ``headers`` (a TaskSpec's header map) when
    there is a valid current span and ``headers`` have no ``traceparent``."""
    trace: Any = sys.modules.get("opentelemetry.trace")
    if trace is None or TRACEPARENT in headers:
        return
    if not trace.get_current_span().get_span_context().is_valid:
        return
    _propagator().inject(headers)
