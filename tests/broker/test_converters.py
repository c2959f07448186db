"""Wire-level shortcuts in the converters produce exactly what the message API would."""

from __future__ import annotations

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import task_pb2
from leasq_broker.edge.converters import enqueue_batch_response, enqueued
from leasq_broker.edge.status import item_error
from leasq_broker.errors import DuplicateTask, InvalidField, LeasqError
from leasq_broker.models import Enqueued


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
