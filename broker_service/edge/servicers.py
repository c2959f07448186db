"""Thin gRPC servicers: convert the request, call the domain, convert the answer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc
from google.protobuf.internal.containers import RepeatedCompositeFieldContainer

from leasq.v1 import broker_service_pb2 as broker_pb
from leasq.v1 import broker_service_pb2_grpc as broker_grpc
from leasq.v1 import inspect_service_pb2 as inspect_pb
from leasq.v1 import inspect_service_pb2_grpc as inspect_grpc
from leasq_broker import validation as v
from leasq_broker.admin import Admin
from leasq_broker.edge import converters as conv
from leasq_broker.edge import enqueue_stream, settle_stream
from leasq_broker.edge import worker_converters as wconv
from leasq_broker.edge.group_servicer import GroupInspectMethods
from leasq_broker.edge.operations_servicer import OperationsMethods
from leasq_broker.edge.status import grpc_edge, item_error
from leasq_broker.edge.worker_servicer import WorkerInspectMethods
from leasq_broker.errors import InvalidField, LeaseLost, LeasqError, TaskNotFound
from leasq_broker.groups.service import Groups
from leasq_broker.leasing import Leasing
from leasq_broker.models import (
    HeartbeatStatus,
    LeaseRef,
    Settlement,
    SettleOutcome,
    SettleStatus,
)
from leasq_broker.operations.service import Operations
from leasq_broker.producer import Producer
from leasq_broker.settings.service import QueueSettingsService
from leasq_broker.workers.models import Command
from leasq_broker.workers.registry import WorkerRegistry

Context = grpc.aio.ServicerContext[Any, Any]


class BrokerServicer(broker_grpc.BrokerServiceServicer):
    """Producer and worker calls."""

    def __init__(self, producer: Producer, leasing: Leasing, max_payload_bytes: int,
                 workers: WorkerRegistry) -> None:
        self._producer = producer
        self._leasing = leasing
        self._max_payload_bytes = max_payload_bytes
        self._workers = workers

    @grpc_edge
    async def Enqueue(self, request: broker_pb.EnqueueRequest, context: Context
                      ) -> broker_pb.EnqueueResponse:
        if not request.HasField("task"):
            raise InvalidField("task", "is required")
        result = await self._producer.enqueue(conv.new_task(request.task))
        return broker_pb.EnqueueResponse(task=conv.enqueued(result))

    # The generated stub types a streaming method as a generator; grpc.aio also runs a
    # coroutine that writes its answers through the context, as this one does.
    async def EnqueueStream(  # type: ignore[override]
        self, requests: AsyncIterator[broker_pb.EnqueueStreamRequest], context: Context
    ) -> None:
        await enqueue_stream.serve(requests, context, self._producer.enqueue)

    @grpc_edge
    async def EnqueueBatch(self, request: broker_pb.EnqueueBatchRequest, context: Context
                           ) -> broker_pb.EnqueueBatchResponse:
        v.batch_size("tasks", len(request.tasks))
        results = await self._producer.enqueue_many(conv.new_tasks(request.tasks))
        return conv.enqueue_batch_response(results)

    @grpc_edge
    async def Lease(self, request: broker_pb.LeaseRequest, context: Context
                    ) -> broker_pb.LeaseResponse:
        ask = conv.lease_ask(request)
        command = await self._workers.record(wconv.lease_sighting(request, ask))
        if command is Command.NONE:
            if ask.wait_ms > 0:
                outcome = await self._workers.until_commanded(ask.worker_id,
                                                              self._leasing.lease(ask))
            else:
                outcome = await self._leasing.lease(ask)
            if not isinstance(outcome, Command):
                return broker_pb.LeaseResponse(tasks=[conv.leased_task(g) for g in outcome])
            command = outcome
        return broker_pb.LeaseResponse(command=wconv.command_number(command))

    @grpc_edge
    async def Heartbeat(self, request: broker_pb.HeartbeatRequest, context: Context
                        ) -> broker_pb.HeartbeatResponse:
        v.printable("worker_id", request.worker_id, required=True)
        sighting = wconv.heartbeat_sighting(request)
        if len(request.leases) > v.MAX_HEARTBEAT_LEASES:
            raise InvalidField("leases", f"at most {v.MAX_HEARTBEAT_LEASES} leases per call")
        refs = conv.lease_refs(request.leases, "leases")
        lease_ms = 0
        if request.HasField("lease_duration"):
            lease_ms = conv.duration_ms(request.lease_duration, "lease_duration")
            v.duration_ms("lease_duration", lease_ms, v.MIN_LEASE_MS, v.MAX_LEASE_MS)
        command = await self._workers.record(sighting)
        outcomes = await self._leasing.heartbeat(refs, lease_ms) if refs else []
        response = broker_pb.HeartbeatResponse(command=wconv.command_number(command))
        for ref, outcome in zip(refs, outcomes, strict=True):
            state = response.leases.add(task_id=ref.task_id, queue=ref.queue,
                                        status=int(outcome.status))
            if outcome.status is not HeartbeatStatus.LOST and outcome.expires_ms:
                conv.set_ms(state.lease_expires_at, outcome.expires_ms)
        return response

    @grpc_edge
    async def Ack(self, request: broker_pb.AckRequest, context: Context
                  ) -> broker_pb.AckResponse:
        return await self._ack(request)

    @grpc_edge
    async def Nack(self, request: broker_pb.NackRequest, context: Context
                   ) -> broker_pb.NackResponse:
        return await self._nack(request)

    async def SettleStream(  # type: ignore[override]
        self, requests: AsyncIterator[broker_pb.SettleStreamRequest], context: Context
    ) -> None:
        await settle_stream.serve(requests, context, self._ack, self._nack)

    async def _ack(self, request: broker_pb.AckRequest) -> broker_pb.AckResponse:
        v.printable("worker_id", request.worker_id, required=True)
        items = conv.acks(request, self._max_payload_bytes)
        outcomes, grants = await self._leasing.settle(items, conv.lease_next(request))
        response = broker_pb.AckResponse(next_tasks=[conv.leased_task(g) for g in grants])
        _fill_results(response.results, items, outcomes)
        return response

    async def _nack(self, request: broker_pb.NackRequest) -> broker_pb.NackResponse:
        v.printable("worker_id", request.worker_id, required=True)
        items = conv.nacks(request)
        outcomes, grants = await self._leasing.settle(items, conv.lease_next(request))
        response = broker_pb.NackResponse(next_tasks=[conv.leased_task(g) for g in grants])
        _fill_results(response.results, items, outcomes)
        for outcome in outcomes:
            at = response.next_process_at.add()
            if outcome.next_process_at_ms:
                conv.set_ms(at, outcome.next_process_at_ms)
        return response


def _fill_results(
    results: RepeatedCompositeFieldContainer[broker_pb.SettleResult],
    items: Sequence[Settlement],
    outcomes: Sequence[SettleOutcome],
) -> None:
    """Per-item results; a refused single item fails the whole call instead."""
    pairs = zip(items, outcomes, strict=True)
    errors = [_settle_error(item.lease, outcome) for item, outcome in pairs]
    if len(items) == 1 and errors[0] is not None:
        raise errors[0]
    for item, outcome, error in zip(items, outcomes, errors, strict=True):
        entry = results.add(task_id=item.lease.task_id,
                            already_settled=outcome.status is SettleStatus.ALREADY_SETTLED)
        if error is not None:
            entry.error.CopyFrom(item_error(error))


def _settle_error(lease: LeaseRef, outcome: SettleOutcome) -> LeasqError | None:
    queue, task_id = lease.queue, lease.task_id
    if outcome.status is SettleStatus.LEASE_LOST:
        return LeaseLost(
            f"lease lost: task {task_id!r} in queue {queue!r} is no longer leased with this "
            "token (the lease expired or the task was settled); drop the task"
        )
    if outcome.status is SettleStatus.NOT_FOUND:
        return TaskNotFound(f"no task {task_id!r} in queue {queue!r}")
    return None


class InspectServicer(GroupInspectMethods, OperationsMethods, WorkerInspectMethods,
                      inspect_grpc.InspectServiceServicer):
    """Operator calls (groups and queue settings in GroupInspectMethods; history, bulk moves,
    search, queue deletion and server info in OperationsMethods; workers in
    WorkerInspectMethods)."""

    def __init__(self, admin: Admin, groups: Groups, operations: Operations,
                 workers: WorkerRegistry, queue_settings: QueueSettingsService) -> None:
        self._admin = admin
        self._groups = groups
        self._queue_settings = queue_settings
        self._operations = operations
        self._workers = workers

    @grpc_edge
    async def GetTask(self, request: inspect_pb.GetTaskRequest, context: Context
                      ) -> inspect_pb.GetTaskResponse:
        task = await self._admin.get_task(request.queue, request.task_id)
        info = conv.task_info(task)
        block = await self._admin.blocked(task)
        if block is not None:
            info.blocked.CopyFrom(conv.task_block(block))
        return inspect_pb.GetTaskResponse(task=info)

    @grpc_edge
    async def ListQueues(self, request: inspect_pb.ListQueuesRequest, context: Context
                         ) -> inspect_pb.ListQueuesResponse:
        if request.include_stats:
            every, now = await self._admin.every_queue_counts()
            return inspect_pb.ListQueuesResponse(queues=[
                inspect_pb.QueueSummary(queue=c.queue, paused=c.paused,
                                        stats=conv.queue_stats(c, now)) for c in every])
        queues = await self._admin.list_queues()
        return inspect_pb.ListQueuesResponse(
            queues=[inspect_pb.QueueSummary(queue=name, paused=paused) for name, paused in queues]
        )

    @grpc_edge
    async def GetQueueStats(self, request: inspect_pb.GetQueueStatsRequest, context: Context
                            ) -> inspect_pb.GetQueueStatsResponse:
        counts, now = await self._admin.queue_counts(request.queue)
        return inspect_pb.GetQueueStatsResponse(stats=conv.queue_stats(counts, now))

    @grpc_edge
    async def ListTasks(self, request: inspect_pb.ListTasksRequest, context: Context
                        ) -> inspect_pb.ListTasksResponse:
        tasks, token, total = await self._admin.list_tasks(
            request.queue, conv.state_name(request.state) if request.state else "",
            request.page_size, request.page_token,
        )
        return inspect_pb.ListTasksResponse(
            tasks=[conv.task_info(t) for t in tasks], next_page_token=token, total_size=total
        )

    @grpc_edge
    async def PauseQueue(self, request: inspect_pb.PauseQueueRequest, context: Context
                         ) -> inspect_pb.PauseQueueResponse:
        await self._admin.pause(request.queue, True)
        return inspect_pb.PauseQueueResponse(paused=True)

    @grpc_edge
    async def ResumeQueue(self, request: inspect_pb.ResumeQueueRequest, context: Context
                          ) -> inspect_pb.ResumeQueueResponse:
        await self._admin.pause(request.queue, False)
        return inspect_pb.ResumeQueueResponse(paused=False)

    @grpc_edge
    async def RunTask(self, request: inspect_pb.RunTaskRequest, context: Context
                      ) -> inspect_pb.RunTaskResponse:
        task = await self._admin.move("run", request.queue, request.task_id)
        assert task is not None
        return inspect_pb.RunTaskResponse(task=conv.task_info(task))

    @grpc_edge
    async def ArchiveTask(self, request: inspect_pb.ArchiveTaskRequest, context: Context
                          ) -> inspect_pb.ArchiveTaskResponse:
        task = await self._admin.move("archive", request.queue, request.task_id)
        assert task is not None
        return inspect_pb.ArchiveTaskResponse(task=conv.task_info(task))

    @grpc_edge
    async def DeleteTask(self, request: inspect_pb.DeleteTaskRequest, context: Context
                         ) -> inspect_pb.DeleteTaskResponse:
        await self._admin.move("delete", request.queue, request.task_id)
        return inspect_pb.DeleteTaskResponse()

    @grpc_edge
    async def CancelTask(self, request: inspect_pb.CancelTaskRequest, context: Context
                         ) -> inspect_pb.CancelTaskResponse:
        task = await self._admin.cancel(request.queue, request.task_id)
        return inspect_pb.CancelTaskResponse(task=conv.task_info(task))
