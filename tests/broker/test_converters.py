"""Wire-level shortcuts in the converters produce exactly what the message API would."""

from __future__ import annotations

import itertools

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import task_pb2
from leasq_broker.edge.converters import encode_envelope, enqueue_batch_response, enqueued
from leasq_broker.edge.status import item_error
from leasq_broker.errors import DuplicateTask, InvalidField, LeasqError
from leasq_broker.models import Enqueued, NewTask


def test_the_assembled_batch_response_equals_the_one_built_message_by_message() -> None:
    results: list[Enqueued | LeasqError] = [
        Enqueued("a" * 200, "default", False, 1_800_000_000_123),
        InvalidField("tasks[1].queue", "bad"),
        Enqueued("b", "other", True, 1_800_000_500_000),
        DuplicateTask("held"),
        Enqueued("c", "default", False, 1_800_000_000_123),
    ]
    expected = pb.EnqueueBatchResponse(enqueued_count=3, results=[
        pb.EnqueueBatchResult(error=item_error(r)) if isinstance(r, LeasqError)
        else pb.EnqueueBatchResult(task=enqueued(r)) for r in results])
    got = enqueue_batch_response(results)
    assert got == expected
    assert got.results[2].task.state == task_pb2.TASK_STATE_SCHEDULED
    assert got.results[0].task.next_process_at.ToMilliseconds() == 1_800_000_000_123


def test_the_assembled_envelope_is_byte_for_byte_the_one_protobuf_serializes() -> None:
    cases = itertools.product(
        (b"", b"x", b"y" * 200, b"z" * 20_000),  # empty, and lengths of 1, 2 and 3 varint bytes
        (0, 3, 300),  # max_retry: proto3 leaves 0 out
        (None, 1, 1000, 86_400_123),  # timeout
        ("", "k", "ü" * 100),  # concurrency key
        (0, 999, 1000, 1_800_000_000_123),  # enqueued at: zero seconds or zero nanos left out
        ("a", "é" * 80),  # task id
    )
    for payload, max_retry, timeout_ms, key, at_ms, task_id in cases:
        task = NewTask(type="email:ü", payload=payload, headers={}, queue="q" * 100,
                       max_retry=max_retry, timeout_ms=timeout_ms, concurrency_key=key)
        assert encode_envelope(task, task_id, at_ms) == task_pb2.LeasedTask(
            id=task_id, queue=task.queue, type=task.type, payload=payload, max_retry=max_retry,
            timeout=None if timeout_ms is None else Duration(seconds=timeout_ms // 1000,
                                                             nanos=timeout_ms % 1000 * 10**6),
            enqueued_at=Timestamp(seconds=at_ms // 1000, nanos=at_ms % 1000 * 10**6),
            concurrency_key=key,
        ).SerializeToString()


def test_an_envelope_with_headers_or_a_deadline_keeps_them() -> None:
    task = NewTask(type="t", payload=b"p", headers={"traceparent": "00-x"}, queue="q",
                   max_retry=1, deadline_ms=1_900_000_000_000)
    envelope = task_pb2.LeasedTask.FromString(encode_envelope(task, "id", 1_800_000_000_000))
    assert dict(envelope.headers) == {"traceparent": "00-x"}
    assert envelope.deadline.ToMilliseconds() == 1_900_000_000_000
    assert (envelope.id, envelope.payload, envelope.max_retry) == ("id", b"p", 1)
