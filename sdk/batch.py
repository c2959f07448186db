"""Planning and collecting ``enqueue_many``: chunks of EnqueueBatch, one result per task.

Shared by both clients so that they differ only in how a call is awaited. Results come back in
request order; each is the :class:`EnqueuedTask` or the typed exception for that task. A task
the SDK cannot even encode, a refused item, and every item of a chunk whose call failed as a
whole (broker unreachable, unauthenticated, ...) get an exception instance; after a chunk fails,
the later chunks are not sent and their items get the same exception.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from leasq.v1 import broker_service_pb2, task_pb2
from leasq_sdk.convert import enqueued_task
from leasq_sdk.errors import LeasqError, from_item_error
from leasq_sdk.models import EnqueuedTask
from leasq_sdk.options import TaskRequest

#: Most tasks the broker takes in one EnqueueBatch call.
MAX_BATCH = 1_000

EnqueueResult = EnqueuedTask | LeasqError


@dataclass(slots=True)
class Chunk:
    """One EnqueueBatch call: the request and the result slots it answers."""

    indexes: list[int]
    request: broker_service_pb2.EnqueueBatchRequest
    #: True when every task has a task_id, so the call may be retried automatically.
    idempotent: bool


@dataclass(slots=True)
class BatchPlan:
    """The chunks to send and the results collected so far."""

    results: list[EnqueueResult | None]
    chunks: list[Chunk] = field(default_factory=list)

    def record(self, chunk: Chunk, response: broker_service_pb2.EnqueueBatchResponse) -> None:
        """Store the per-item outcomes of one answered call."""
        answers = response.results
        for position, index in enumerate(chunk.indexes):
            if position >= len(answers):
                self.results[index] = LeasqError("the broker returned no result for this task")
                continue
            answer = answers[position]
            if answer.HasField("error"):
                self.results[index] = from_item_error(answer.error)
            else:
                self.results[index] = enqueued_task(answer.task)

    def fail(self, chunks: Iterable[Chunk], error: LeasqError) -> None:
        """Give every task of these chunks the error of a call that failed as a whole."""
        for chunk in chunks:
            for index in chunk.indexes:
                self.results[index] = error

    def finish(self) -> list[EnqueueResult]:
        """All results, in request order."""
        return [r if r is not None else LeasqError("not sent") for r in self.results]


def plan(tasks: Iterable[TaskRequest], size: int = MAX_BATCH) -> BatchPlan:
    """Encode the tasks and split them into calls of at most ``size`` tasks."""
    requests = list(tasks)
    batch = BatchPlan(results=[None] * len(requests))
    for indexes, specs, idempotent in _chunks(requests, batch, size):
        request = broker_service_pb2.EnqueueBatchRequest(tasks=specs)
        batch.chunks.append(Chunk(indexes=indexes, request=request, idempotent=idempotent))
    return batch


def _chunks(
    requests: list[TaskRequest], batch: BatchPlan, size: int
) -> Iterator[tuple[list[int], list[task_pb2.TaskSpec], bool]]:
    indexes: list[int] = []
    specs: list[task_pb2.TaskSpec] = []
    idempotent = True
    for index, request in enumerate(requests):
        try:
            spec = request.to_spec()
        except LeasqError as err:
            batch.results[index] = err
            continue
        indexes.append(index)
        specs.append(spec)
        idempotent = idempotent and bool(request.task_id)
        if len(specs) == size:
            yield indexes, specs, idempotent
            indexes, specs, idempotent = [], [], True
    if specs:
        yield indexes, specs, idempotent
