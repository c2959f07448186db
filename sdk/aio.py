"""The asyncio client: the same calls as :class:`leasq_sdk.Client`, awaited, over ``grpc.aio``.

The client may be created anywhere (at import time too); it connects on its first call, and
from then on belongs to that call's event loop, as ``grpc.aio`` channels do: use one client per
event loop. Concurrent ``enqueue`` calls of its coroutines are coalesced (see
:mod:`leasq_sdk.coalescing_aio`). Retries, deadlines and errors work
exactly as in the sync client; in particular an enqueue without a task_id is never retried
automatically (see :mod:`leasq_sdk.client`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeVar

import grpc

from leasq.v1 import broker_service_pb2, broker_service_pb2_grpc, inspect_service_pb2
from leasq.v1 import inspect_service_pb2_grpc as inspect_grpc
from leasq.v1 import schedule_service_pb2_grpc as schedule_grpc
from leasq_sdk import batch, convert
from leasq_sdk.base import DEFAULT_PAGE_SIZE, ClientBase, list_tasks_request
from leasq_sdk.channel import IDEMPOTENT_METHODS, ChannelSettings, open_aio_channel
from leasq_sdk.coalescing_aio import AsyncCoalescer
from leasq_sdk.convert import Seconds
from leasq_sdk.enqueue_stream_aio import AsyncEnqueueStream
from leasq_sdk.errors import from_rpc_error
from leasq_sdk.group_client import AsyncGroupMethods
from leasq_sdk.models import EnqueuedTask, QueueInfo, QueueStats, TaskInfo, TaskPage, TaskState
from leasq_sdk.operations_client import AsyncOperationsMethods
from leasq_sdk.options import TaskRequest, build_spec
from leasq_sdk.schedule_client import AsyncScheduleMethods
from leasq_sdk.worker_client import AsyncWorkerMethods

_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")


@dataclass(frozen=True, slots=True)
class _Connection:
    """The two channels of a client (see :mod:`leasq_sdk.channel`) and the stubs on them."""

    retrying: grpc.aio.Channel
    plain: grpc.aio.Channel
    broker: broker_service_pb2_grpc.BrokerServiceAsyncStub
    broker_once: broker_service_pb2_grpc.BrokerServiceAsyncStub
    inspect: inspect_grpc.InspectServiceAsyncStub
    schedules: tuple[schedule_grpc.ScheduleServiceAsyncStub, schedule_grpc.ScheduleServiceAsyncStub]

    @classmethod
    def open(cls, settings: ChannelSettings) -> _Connection:
        retrying = open_aio_channel(settings, IDEMPOTENT_METHODS)
        plain = open_aio_channel(settings)
        return cls(
            retrying=retrying,
            plain=plain,
            broker=broker_service_pb2_grpc.BrokerServiceStub(retrying),
            broker_once=broker_service_pb2_grpc.BrokerServiceStub(plain),
            inspect=inspect_grpc.InspectServiceStub(retrying),
            schedules=(schedule_grpc.ScheduleServiceStub(retrying),
                       schedule_grpc.ScheduleServiceStub(plain)),
        )


class AsyncClient(ClientBase, AsyncScheduleMethods, AsyncGroupMethods,
                  AsyncOperationsMethods, AsyncWorkerMethods):
    """Asyncio Leasq client; arguments as :class:`leasq_sdk.base.ClientBase`.

    ::

        async with AsyncClient("broker:50051") as client:
            info = await client.enqueue("email:welcome", {"user_id": 42}, queue="email")
    """

    def _connect(self) -> None:
        # Opened by the first call, inside the event loop that the channels then belong to.
        self._connection: _Connection | None = None
        self._coalescer = (AsyncCoalescer(self._send_one, self._send_batch,
                                          self._coalesce_linger)
                           if self._coalesce else None)  # fmt: skip
        self._enqueue_stream = (AsyncEnqueueStream(self._open_enqueue_stream)
                                if self._use_enqueue_stream else None)  # fmt: skip

    def _open_enqueue_stream(
        self, requests: AsyncIterator[broker_service_pb2.EnqueueStreamRequest]
    ) -> Any:
        return self._open().broker_once.EnqueueStream(requests, metadata=self._metadata,
                                                      wait_for_ready=self._wait_for_ready)

    def _schedule_stubs(self) -> tuple[schedule_grpc.ScheduleServiceAsyncStub,
                                       schedule_grpc.ScheduleServiceAsyncStub]:
        return self._open().schedules

    def _inspect_stub(self) -> inspect_grpc.InspectServiceAsyncStub:
        return self._open().inspect

    def _open(self) -> _Connection:
        connection = self._connection
        if connection is None:
            connection = self._connection = _Connection.open(self.settings)
        return connection

    async def close(self) -> None:
        """Close the connection; calls in flight are cancelled."""
        if self._enqueue_stream is not None:
            await self._enqueue_stream.close()
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.plain.close()
            await connection.retrying.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _invoke(
        self,
        method: Callable[..., Awaitable[_Resp]],
        request: _Req,
        rpc_timeout: float | None,
    ) -> _Resp:
        try:
            return await method(request, **self._call_args(rpc_timeout))
        except grpc.RpcError as err:
            raise from_rpc_error(err) from err

    async def enqueue(
        self,
        type: str,
        payload: Any = b"",
        *,
        queue: str | None = None,
        max_retry: int | None = None,
        timeout: Seconds | None = None,  # noqa: ASYNC109 - the task's limit, not this call's
        deadline: datetime | None = None,
        process_at: datetime | None = None,
        process_in: Seconds | None = None,
        unique: Seconds | None = None,
        unique_key: str | None = None,
        task_id: str | None = None,
        retention: Seconds | None = None,
        group: str | None = None,
        headers: Mapping[str, str] | None = None,
        rpc_timeout: float | None = None,
        concurrency_key: str | None = None,
    ) -> EnqueuedTask:
        """Add one task; arguments and errors as :meth:`leasq_sdk.Client.enqueue`."""
        request = broker_service_pb2.EnqueueRequest()
        build_spec(
            type,
            payload,
            queue=queue,
            max_retry=max_retry,
            timeout=timeout,
            deadline=deadline,
            process_at=process_at,
            process_in=process_in,
            unique=unique,
            unique_key=unique_key,
            task_id=task_id,
            retention=retention,
            group=group,
            headers=headers,
            concurrency_key=concurrency_key,
            into=request.task,
        )
        call_timeout = self._timeout if rpc_timeout is None else rpc_timeout
        if self._coalescer is None:
            return await self._send_one(request, call_timeout, bool(task_id))
        return await self._coalescer.enqueue(request, call_timeout, bool(task_id))

    async def _send_one(self, request: broker_service_pb2.EnqueueRequest,
                        call_timeout: float | None, idempotent: bool) -> EnqueuedTask:  # fmt: skip
        """One task as a message of the enqueue stream or, when that cannot carry it, in one
        ``Enqueue`` call (retried only when it has a task_id)."""
        stream = self._enqueue_stream
        if stream is not None and stream.enabled:
            started = time.monotonic()
            enqueued = await stream.send(request.task, call_timeout, idempotent)
            if enqueued is not None:
                return enqueued
            if call_timeout is not None:
                call_timeout = max(0.0, call_timeout - (time.monotonic() - started))
        stub = self._open().broker if idempotent else self._open().broker_once
        try:
            response = await stub.Enqueue(request, timeout=call_timeout,
                                          metadata=self._metadata,
                                          wait_for_ready=self._wait_for_ready)  # fmt: skip
        except grpc.RpcError as err:
            raise from_rpc_error(err) from err
        return convert.enqueued_task(response.task)

    async def _send_batch(self, request: broker_service_pb2.EnqueueBatchRequest,
                          call_timeout: float | None,
                          idempotent: bool) -> broker_service_pb2.EnqueueBatchResponse:  # fmt: skip
        """One ``EnqueueBatch`` call of coalesced enqueues."""
        stub = self._open().broker if idempotent else self._open().broker_once
        try:
            return await stub.EnqueueBatch(request, timeout=call_timeout,
                                           metadata=self._metadata,
                                           wait_for_ready=self._wait_for_ready)  # fmt: skip
        except grpc.RpcError as err:
            raise from_rpc_error(err) from err

    async def enqueue_many(
        self, tasks: Iterable[TaskRequest], *, rpc_timeout: float | None = None
    ) -> list[batch.EnqueueResult]:
        """Add many tasks, 1,000 per call; as :meth:`leasq_sdk.Client.enqueue_many`."""
        plan = batch.plan(tasks)
        connection = self._open()
        for position, chunk in enumerate(plan.chunks):
            stub = connection.broker if chunk.idempotent else connection.broker_once
            try:
                response = await stub.EnqueueBatch(chunk.request, **self._call_args(rpc_timeout))
            except grpc.RpcError as err:
                plan.fail(plan.chunks[position:], from_rpc_error(err))
                break
            plan.record(chunk, response)
        return plan.finish()

    async def get_task(
        self, queue: str, task_id: str, *, rpc_timeout: float | None = None
    ) -> TaskInfo:
        """Everything recorded about one task; :class:`TaskNotFound` if there is none."""
        request = inspect_service_pb2.GetTaskRequest(queue=queue, task_id=task_id)
        response = await self._invoke(self._open().inspect.GetTask, request, rpc_timeout)
        return convert.task_info(response.task)

    async def list_queues(self, *, include_stats: bool = False,
                          rpc_timeout: float | None = None) -> list[QueueInfo]:
        """See :meth:`Client.list_queues`."""
        request = inspect_service_pb2.ListQueuesRequest(include_stats=include_stats)
        return convert.queue_infos(
            await self._invoke(self._open().inspect.ListQueues, request, rpc_timeout)
        )

    async def queue_stats(self, queue: str, *, rpc_timeout: float | None = None) -> QueueStats:
        """Counts per state and processing totals of a queue (zeros for an unknown queue)."""
        request = inspect_service_pb2.GetQueueStatsRequest(queue=queue)
        response = await self._invoke(self._open().inspect.GetQueueStats, request, rpc_timeout)
        return convert.queue_stats(response.stats)

    async def list_tasks(
        self,
        queue: str,
        state: TaskState | str,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        page_token: str = "",
        rpc_timeout: float | None = None,
    ) -> TaskPage:
        """One page of a queue's tasks in one state, oldest first."""
        request = list_tasks_request(queue, state, page_size, page_token)
        response = await self._invoke(self._open().inspect.ListTasks, request, rpc_timeout)
        return convert.task_page(response)

    async def iter_tasks(
        self,
        queue: str,
        state: TaskState | str,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        rpc_timeout: float | None = None,
    ) -> AsyncIterator[TaskInfo]:
        """Every task of a queue in one state, fetching pages as the iteration goes."""
        token = ""
        while True:
            page = await self.list_tasks(
                queue, state, page_size=page_size, page_token=token, rpc_timeout=rpc_timeout
            )
            for task in page.tasks:
                yield task
            token = page.next_page_token
            if not token:
                return

    async def pause(self, queue: str, *, rpc_timeout: float | None = None) -> None:
        """Stop leasing from a queue (enqueue still works). Idempotent."""
        request = inspect_service_pb2.PauseQueueRequest(queue=queue)
        await self._invoke(self._open().inspect.PauseQueue, request, rpc_timeout)

    async def resume(self, queue: str, *, rpc_timeout: float | None = None) -> None:
        """Resume leasing from a paused queue. Idempotent."""
        request = inspect_service_pb2.ResumeQueueRequest(queue=queue)
        await self._invoke(self._open().inspect.ResumeQueue, request, rpc_timeout)

    async def cancel(
        self, queue: str, task_id: str, *, rpc_timeout: float | None = None
    ) -> TaskInfo:
        """Ask the worker running an active task to stop; :class:`WrongState` if not active."""
        request = inspect_service_pb2.CancelTaskRequest(queue=queue, task_id=task_id)
        response = await self._invoke(self._open().inspect.CancelTask, request, rpc_timeout)
        return convert.task_info(response.task)

    async def run(
        self, queue: str, task_id: str, *, rpc_timeout: float | None = None
    ) -> TaskInfo:
        """Make a scheduled, retry or archived task pending now; :class:`WrongState` otherwise."""
        request = inspect_service_pb2.RunTaskRequest(queue=queue, task_id=task_id)
        response = await self._invoke(self._open().inspect.RunTask, request, rpc_timeout)
        return convert.task_info(response.task)

    async def archive(
        self, queue: str, task_id: str, *, rpc_timeout: float | None = None
    ) -> TaskInfo:
        """Dead-letter a pending, scheduled or retry task; :class:`WrongState` otherwise."""
        request = inspect_service_pb2.ArchiveTaskRequest(queue=queue, task_id=task_id)
        response = await self._invoke(self._open().inspect.ArchiveTask, request, rpc_timeout)
        return convert.task_info(response.task)

    async def delete(
        self, queue: str, task_id: str, *, rpc_timeout: float | None = None
    ) -> None:
        """Delete a task that is not active; :class:`WrongState` for an active one."""
        request = inspect_service_pb2.DeleteTaskRequest(queue=queue, task_id=task_id)
        await self._invoke(self._open().inspect.DeleteTask, request, rpc_timeout)
