"""W3C trace context from the producer's span to the handler's, through a real broker.

The worker runs in this process (as in tests/worker) so that its spans reach the SDK's
InMemorySpanExporter; the producer is the SDK's AsyncClient inside a span of its own.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import grpc.aio
import pytest
from broker_process import BrokerHandle
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from rpc_testing import lease_request, spec
from waiting import eventually, within

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import broker_service_pb2_grpc
from leasq_sdk import AsyncClient
from leasq_worker import Registry, Task, Worker

EXPORTER = InMemorySpanExporter()
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture(scope="module")
def tracer() -> Iterator[trace.Tracer]:
    """A tracer whose finished spans land in EXPORTER (the SDK provider is set once)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
        trace.set_tracer_provider(provider)
    yield trace.get_tracer("leasq-tests")
    EXPORTER.clear()


@asynccontextmanager
async def running(broker: BrokerHandle, registry: Registry, queue: str) -> AsyncIterator[Worker]:
    worker = Worker(registry, broker=broker.address, queues=[queue], handle_signals=False,
                    poll_wait=1.0)  # fmt: skip
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.stop()
        await within(15.0, task, "the in-process worker stops")


async def attempt_spans(task_type: str, count: int) -> list[ReadableSpan]:
    async def ended() -> list[ReadableSpan] | None:
        spans = [s for s in EXPORTER.get_finished_spans() if s.name == f"leasq.task {task_type}"]
        return spans if len(spans) >= count else None

    return await eventually(ended, 10.0, f"{count} attempt span(s) of {task_type} exported")


async def test_one_trace_runs_from_the_producer_span_to_the_handler_span(
    broker: BrokerHandle, tracer: trace.Tracer
) -> None:
    queue, task_type = f"tq-{uuid.uuid4().hex[:8]}", f"traced:{uuid.uuid4().hex[:6]}"
    seen: asyncio.Queue[trace.SpanContext] = asyncio.Queue()
    registry = Registry()

    @registry.handler(task_type)
    async def handle(task: Task) -> None:
        seen.put_nowait(trace.get_current_span().get_span_context())

    with tracer.start_as_current_span("produce") as producer:
        async with AsyncClient(broker.address) as client:
            enqueued = await client.enqueue(task_type, b"x", queue=queue)
    async with running(broker, registry, queue):
        in_handler = await within(15.0, seen.get(), "the handler ran")
    (span,) = await attempt_spans(task_type, 1)

    produced = producer.get_span_context()
    assert span.context is not None and span.parent is not None
    assert span.context.trace_id == produced.trace_id == in_handler.trace_id
    assert span.parent.span_id == produced.span_id
    assert in_handler.span_id == span.context.span_id  # the handler runs inside the span
    assert span.kind is trace.SpanKind.CONSUMER
    assert span.attributes is not None
    assert {
        "leasq.task.id": enqueued.id, "leasq.task.type": task_type, "leasq.task.queue": queue,
        "leasq.task.attempt": 1, "leasq.task.outcome": "succeeded",
    }.items() <= dict(span.attributes).items()  # fmt: skip
    assert span.status.status_code is trace.StatusCode.UNSET


async def test_a_failed_attempt_records_its_exception(
    broker: BrokerHandle, tracer: trace.Tracer
) -> None:
    queue, task_type = f"tq-{uuid.uuid4().hex[:8]}", f"failing:{uuid.uuid4().hex[:6]}"
    registry = Registry()

    @registry.handler(task_type)
    async def handle(task: Task) -> None:
        raise ValueError("bad input")

    with tracer.start_as_current_span("produce"):
        async with AsyncClient(broker.address) as client:
            await client.enqueue(task_type, b"x", queue=queue, max_retry=0)
    async with running(broker, registry, queue):
        (span,) = await attempt_spans(task_type, 1)

    assert span.attributes is not None and span.attributes["leasq.task.outcome"] == "failed"
    assert span.status.status_code is trace.StatusCode.ERROR
    assert span.status.description == "bad input"
    (event,) = [e for e in span.events if e.name == "exception"]
    assert event.attributes is not None and event.attributes["exception.type"] == "ValueError"


async def test_no_span_no_header(broker: BrokerHandle, tracer: trace.Tracer) -> None:
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    async with AsyncClient(broker.address) as client:
        await client.enqueue("plain", b"x", queue=queue)
    leased = await lease_one(broker, queue)
    assert "traceparent" not in leased.headers


async def lease_one(broker: BrokerHandle, queue: str) -> Any:
    async with grpc.aio.insecure_channel(broker.address) as channel:
        stub = broker_service_pb2_grpc.BrokerServiceStub(channel)
        answer = await stub.Lease(lease_request(queue))
        (task,) = answer.tasks
        return task


async def test_the_broker_puts_the_calls_trace_context_in_tasks_without_one(
    broker: BrokerHandle,
) -> None:
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    own = "00-11111111111111111111111111111111-2222222222222222-01"
    metadata = (("traceparent", TRACEPARENT), ("tracestate", "vendor=1"))
    async with grpc.aio.insecure_channel(broker.address) as channel:
        stub = broker_service_pb2_grpc.BrokerServiceStub(channel)
        await stub.Enqueue(pb.EnqueueRequest(task=spec("a", queue=queue)), metadata=metadata)
        await stub.EnqueueBatch(pb.EnqueueBatchRequest(tasks=[
            spec("b", queue=queue), spec("c", queue=queue, headers={"traceparent": own}),
        ]), metadata=metadata)  # fmt: skip
        await stub.Enqueue(pb.EnqueueRequest(task=spec("d", queue=queue)))
        answer = await stub.Lease(lease_request(queue, max_tasks=10))

    headers = {task.type: dict(task.headers) for task in answer.tasks}
    assert headers["a"] == headers["b"] == {"traceparent": TRACEPARENT, "tracestate": "vendor=1"}
    assert headers["c"] == {"traceparent": own}
    assert headers["d"] == {}


def test_without_opentelemetry_nothing_changes() -> None:
    """With opentelemetry unimportable, specs carry no trace headers and attempts no span."""
    code = (
        "import sys; sys.modules['opentelemetry'] = None\n"
        "from leasq_sdk.options import build_spec\n"
        "from leasq_worker import tracing\n"
        "assert not tracing.enabled()\n"
        "assert dict(build_spec('t', b'', headers={'a': 'b'}).headers) == {'a': 'b'}\n"
        "with tracing.attempt_span(None) as span: assert span is None\n"
        "tracing.end_attempt(None, 'failed', ValueError('x'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
