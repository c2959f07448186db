"""An OpenTelemetry span around each attempt, continuing the trace its task was enqueued in.

The producer's W3C trace context travels in the task's ``traceparent``/``tracestate`` headers
(put there by the SDK, or by the broker from the Enqueue call's metadata). Each attempt runs in
a span ``leasq.task <type>`` of kind CONSUMER whose parent is that context, with the task's id,
type, queue and attempt number, and its outcome (the exception recorded on a failure); the span
is current while the handler runs, so the handler's own spans nest under it.

OpenTelemetry is optional (``leasq[otel]``): without it, :func:`attempt_span` is a no-op
context manager shared by every attempt, and nothing else changes. With only the API installed
and no SDK configured, spans are the API's non-recording ones, cheap to make.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

try:
    from opentelemetry import trace as _trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # pragma: no cover - exercised where OpenTelemetry is not installed
    _trace = None  # type: ignore[assignment]

SPAN_PREFIX = "leasq.task "
_NO_SPAN: contextlib.nullcontext[None] = contextlib.nullcontext()
_propagator = TraceContextTextMapPropagator() if _trace is not None else None


def enabled() -> bool:
    """Whether OpenTelemetry is importable (spans are made)."""
    return _trace is not None


class TracedTask(Protocol):
    """What a span needs of a task (a :class:`leasq_worker.Task`)."""

    @property
    def id(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def queue(self) -> str: ...
    @property
    def attempt(self) -> int: ...
    @property
    def headers(self) -> Mapping[str, str]: ...


def attempt_span(task: TracedTask) -> contextlib.AbstractContextManager[Any]:
    """A context manager around one attempt: the current span inside (None without OTel)."""
    if _trace is None:
        return _NO_SPAN
    return _span(task)


@contextlib.contextmanager
def _span(task: TracedTask) -> Iterator[Any]:
    assert _trace is not None and _propagator is not None
    headers = task.headers
    parent = _propagator.extract(headers) if "traceparent" in headers else None
    task_id, task_type, queue = task.id, task.type, task.queue
    tracer = _trace.get_tracer("leasq_worker")
    attributes: dict[str, str | int] = {
        "messaging.system": "leasq",
        "messaging.operation": "process",
        "messaging.destination.name": queue,
        "messaging.message.id": task_id,
        "leasq.task.id": task_id,
        "leasq.task.type": task_type,
        "leasq.task.queue": queue,
        "leasq.task.attempt": task.attempt,
    }
    with tracer.start_as_current_span(
        SPAN_PREFIX + task_type, context=parent, kind=_trace.SpanKind.CONSUMER,
        attributes=attributes, record_exception=False, set_status_on_exception=False,
    ) as span:  # fmt: skip
        yield span


def end_attempt(span: Any, outcome: str, error: BaseException | None = None,
                description: str = "") -> None:  # fmt: skip
    """Record how the attempt ended on ``span`` (a no-op for None): the outcome, and for a
    failure the exception (when there is one) and an ERROR status with ``description``."""
    if span is None or _trace is None:
        return
    span.set_attribute("leasq.task.outcome", outcome)
    if error is not None:
        span.record_exception(error)
        description = description or str(error) or type(error).__name__
    if error is not None or description:
        span.set_status(_trace.Status(_trace.StatusCode.ERROR, description))
