"""An OpenTelemetry span around each attempt, continuing the trace its task was enqueued in.

The producer's W3C trace context travels in the task's ``traceparent``/``tracestate`` headers
(put there by the SDK, or by the broker from the Enqueue call's metadata). Each attempt runs in
a span ``leasq.task <type>`` of kind CONSUMER whose parent is that context, with the task's id,
type, queue and attempt number, and its outcome (the exception recorded on a failure); the span
is current while the handler runs, so the handler's own spans nest under it.

OpenTelemetry is optional (``leasq[otel]``) and never imported here: without
``opentelemetry.trace`` imported by the application (which it does to configure a tracer
provider), :func:`attempt_span` is a no-op context manager shared by every attempt and nothing
else changes; process-pool children, which import this package too, start no slower. With
only the API imported and no SDK configured, spans are the API's non-recording ones, cheap to
make, which still carry the trace context to what the handler enqueues.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

SPAN_PREFIX = "leasq.task "
_NO_SPAN: contextlib.nullcontext[None] = contextlib.nullcontext()


def _api() -> Any:
    """``opentelemetry.trace`` when the application imported it, else None."""
    return sys.modules.get("opentelemetry.trace")


@functools.cache
def _propagator() -> Any:
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator()


def enabled() -> bool:
    """Whether attempts get spans (the application imported OpenTelemetry)."""
    return _api() is not None


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
    api = _api()
    if api is None:
        return _NO_SPAN
    return _span(api, task)


@contextlib.contextmanager
def _span(api: Any, task: TracedTask) -> Iterator[Any]:
    headers = task.headers
    parent = _propagator().extract(headers) if "traceparent" in headers else None
    task_id, task_type, queue = task.id, task.type, task.queue
    tracer = api.get_tracer("leasq_worker")
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
        SPAN_PREFIX + task_type, context=parent, kind=api.SpanKind.CONSUMER,
        attributes=attributes, record_exception=False, set_status_on_exception=False,
    ) as span:  # fmt: skip
        yield span


def end_attempt(span: Any, outcome: str, error: BaseException | None = None,
                description: str = "") -> None:  # fmt: skip
    """Record how the attempt ended on ``span`` (a no-op for None): the outcome, and for a
    failure the exception (when there is one) and an ERROR status with ``description``."""
    api = _api()
    if span is None or api is None:
        return
    span.set_attribute("leasq.task.outcome", outcome)
    if error is not None:
        span.record_exception(error)
        description = description or str(error) or type(error).__name__
    if error is not None or description:
        span.set_status(api.Status(api.StatusCode.ERROR, description))
