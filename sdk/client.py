"""The synchronous client: enqueue tasks and inspect queues over one connection.

Thread-safe: one ``Client`` can be shared by every thread of a process (gRPC channels are);
concurrent ``enqueue`` calls of its threads are coalesced (see :mod:`leasq_sdk.coalescing`).
Failed calls raise the typed exceptions of :mod:`leasq_sdk.errors`.

Automatic retries (UNAVAILABLE, and CANCELLED from a broker going away; with exponential backoff
and jitter until the call's deadline) apply to idempotent calls only: the Inspect reads,
pause/resume, and ``enqueue``/``enqueue_many`` when every task has a ``task_id``. An enqueue
**without** a task_id is never retried automatically, because a retry after a connection broke
mid-call could add the task twice; give a task_id when you want retries (a retry then either
adds the task or answers :class:`TaskIdConflict`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeVar

import grpc

from leasq.v1 import broker_service_pb2, broker_service_pb2_grpc, inspect_service_pb2
from leasq.v1 import inspect_service_pb2_grpc as inspect_grpc
from leasq.v1 import schedule_service_pb2_grpc as schedule_grpc
from leasq_sdk import batch, convert
from leasq_sdk.base import DEFAULT_PAGE_SIZE, ClientBase, list_tasks_request
from leasq_sdk.channel import IDEMPOTENT_METHODS, open_channel
from leasq_sdk.coalescing import Coalescer
from leasq_sdk.convert import Seconds
from leasq_sdk.enqueue_stream import EnqueueStream
from leasq_sdk.errors import from_rpc_error
from leasq_sdk.group_client import GroupMethods
from leasq_sdk.models import EnqueuedTask, QueueInfo, QueueStats, TaskInfo, TaskPage, TaskState
from leasq_sdk.operations_client import OperationsMethods
from leasq_sdk.options import TaskRequest, build_spec
from leasq_sdk.schedule_client import ScheduleMethods
from leasq_sdk.worker_client import WorkerMethods

_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")


class Client(ClientBase, ScheduleMethods, GroupMethods, OperationsMethods, WorkerMethods):
    """Synchronous Leasq client; see :class:`leasq_sdk.base.ClientBase` for the arguments.

    Use it as a context manager, or call :meth:`close` when done::

        with Client("broker:50051", token="...") as client:
            info = client.enqueue("email:welcome", {"user_id": 42}, queue="email")
    """

    def _connect(self) -> None:
        self._retrying = open_channel(self.settings, IDEMPOTENT_METHODS)
        self._plain = open_channel(self.settings)
        self._broker = broker_service_pb2_grpc.BrokerServiceStub(self._retrying)
        self._broker_once = broker_service_pb2_grpc.BrokerServiceStub(self._plain)
        self._inspect = inspect_grpc.InspectServiceStub(self._retrying)
        self._schedules = (schedule_grpc.ScheduleServiceStub(self._retrying),
                           schedule_grpc.ScheduleServiceStub(self._plain))
        self._coalescer = (Coalescer(self._send_one, self._send_batch, self._coalesce_linger)
                           if self._coalesce else None)  # fmt: skip
        self._enqueue_stream = (EnqueueStream(self._open_enqueue_stream)
                                if self._use_enqueue_stream else None)  # fmt: skip

    def _open_enqueue_stream(
        self, requests: Iterator[broker_service_pb2.EnqueueStreamRequest]
    ) -> Any:
        return self._broker_once.EnqueueStream(requests, metadata=self._metadata,
                                               wait_for_ready=self._wait_for_ready)

    def _schedule_stubs(self) -> tuple[schedule_grpc.ScheduleServiceStub,
                                       schedule_grpc.ScheduleServiceStub]:
        return self._schedules

    def _inspect_stub(self) -> inspect_grpc.InspectServiceStub:
        return self._inspect

    def close(self) -> None:
        """Close the connection; calls in flight are cancelled."""
        if self._enqueue_stream is not None:
            self._enqueue_stream.close()
        self._plain.close()
        self._retrying.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _invoke(
        self,
        method: grpc.UnaryUnaryMultiCallable[_Req, _Resp],
        request: _Req,
        rpc_timeout: float | None,
    ) -> _Resp:
        try:
            return method(request, **self._call_args(rpc_timeout))
        except grpc.RpcError as err:
            raise from_rpc_error(err) from err

    def enqueue(
        self,
        type: str,
        payload: Any = b"",
        *,
        queue: str | None = None,
        max_retry: int | None = None,
        timeout: Seconds | None = None,
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
        """Add one task and return its id, queue, state and due time.

        Args:
            type: handler name, e.g. ``"email:welcome"``.
            payload: bytes as given, str as UTF-8, anything else as JSON (see
                :mod:`leasq_sdk.options`).
            queue: queue name (broker default ``"default"``).
            max_retry: retries before the task is archived (broker default 25).
            timeout: per-attempt time limit (seconds or timedelta).
            deadline: instant after which no attempt may run (naive datetimes are UTC).
            process_at / process_in: run no earlier than this instant / this long from now.
            unique: refuse an equal task (same queue, type and payload, or same unique_key)
                for this long, with :class:`DuplicateTask`.
            unique_key: uniqueness key to use instead of (type, payload).
            task_id: your own id: makes the call idempotent (and retried automatically);
                :class:`TaskIdConflict` while a task with this id exists in the queue.
            retention: keep the task (with its result) this long after success.
            group: aggregation group key: the task waits (``AGGREGATING``) in the group of its
                queue, type and key until the group is flushed into one task of this type
                that carries every member (see :mod:`leasq_sdk.groups`). Not together with
                process_at, process_in or unique (:class:`InvalidTask`).
            headers: string metadata carried with the task.
            rpc_timeout: deadline of this call in seconds (default: the client's ``timeout``).
            concurrency_key: fairness within the queue, e.g. a customer id: at most the
                queue's ``per_key_limit`` (default 1) tasks of one key run at once, keys are
                served round-robin, and with a limit of 1 a key's tasks run in enqueue order
                (1-256 printable ASCII characters; not with ``group``).
        """
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
            return self._send_one(request, call_timeout, bool(task_id))
        return self._coalescer.enqueue(request, call_timeout, bool(task_id))

    def _send_one(self, request: broker_service_pb2.EnqueueRequest, call_timeout: float | None,
                  idempotent: bool) -> EnqueuedTask:  # fmt: skip
        """One task as a message of the enqueue stream or, when that cannot carry it, in one
        ``Enqueue`` call (retried only when it has a task_id)."""
        stream = self._enqueue_stream
        if stream is not None and stream.enabled:
            started = time.monotonic()
            enqueued = stream.send(request.task, call_timeout, idempotent)
            if enqueued is not None:
                return enqueued
            if call_timeout is not None:
                call_timeout = max(0.0, call_timeout - (time.monotonic() - started))
        stub = self._broker if idempotent else self._broker_once
        try:
            response = stub.Enqueue(request, timeout=call_timeout, metadata=self._metadata,
                                    wait_for_ready=self._wait_for_ready)  # fmt: skip
        except grpc.RpcError as err:
            raise from_rpc_error(err) from err
        return convert.enqueued_task(response.task)

    def _send_batch(self, request: broker_service_pb2.EnqueueBatchRequest,
                    call_timeout: float | None,
                    idempotent: bool) -> broker_service_pb2.EnqueueBatchResponse:  # fmt: skip
        """One ``EnqueueBatch`` call of coalesced enqueues."""
        stub = self._broker if idempotent else self._broker_once
        try:
            return stub.EnqueueBatch(request, timeout=call_timeout, metadata=self._metadata,
                                     wait_for_ready=self._wait_for_ready)  # fmt: skip
        except grpc.RpcError as err:
            raise from_rpc_error(err) from err

    def enqueue_many(
        self, tasks: Iterable[TaskRequest], *, rpc_timeout: float | None = None
    ) -> list[batch.EnqueueResult]:
        """Add many tasks, 1,000 per call; one result per task, in order.

        Each result is the :class:`EnqueuedTask` or the exception for that task: this method
        does not raise for refusals. A chunk whose tasks all have a task_id is retried
        automatically; ``rpc_timeout`` is the deadline of each chunk's call.
        """
        plan = batch.plan(tasks)
        for position, chunk in enumerate(plan.chunks):
            stub = self._broker if chunk.idempotent else self._broker_once
            try:
                response = stub.EnqueueBatch(chunk.request, **self._call_args(rpc_timeout))
            except grpc.RpcError as err:
                plan.fail(plan.chunks[position:], from_rpc_error(err))
                break
            plan.record(chunk, response)
        return plan.finish()

    def get_task(self, queue: str, task_id: str, *, rpc_timeout: float | None = None) -> TaskInfo:
        """Everything recorded about one task; :class:`TaskNotFound` if there is none."""
        request = inspect_service_pb2.GetTaskRequest(queue=queue, task_id=task_id)
        return convert.task_info(self._invoke(self._inspect.GetTask, request, rpc_timeout).task)

    def list_queues(self, *, include_stats: bool = False,
                    rpc_timeout: float | None = None) -> list[QueueInfo]:
        """Every known queue, sorted by name, with its paused flag; with ``include_stats``
        also each queue's :class:`QueueStats` (``QueueInfo.stats``, read by the broker in one
        round trip to Redis; ``memory_bytes`` left 0)."""
        request = inspect_service_pb2.ListQueuesRequest(include_stats=include_stats)
        return convert.queue_infos(self._invoke(self._inspect.ListQueues, request, rpc_timeout))

    def queue_stats(self, queue: str, *, rpc_timeout: float | None = None) -> QueueStats:
        """Counts per state and processing totals of a queue (zeros for an unknown queue)."""
        request = inspect_service_pb2.GetQueueStatsRequest(queue=queue)
        response = self._invoke(self._inspect.GetQueueStats, request, rpc_timeout)
        return convert.queue_stats(response.stats)

    def list_tasks(
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
        return convert.task_page(self._invoke(self._inspect.ListTasks, request, rpc_timeout))

    def iter_tasks(
        self,
        queue: str,
        state: TaskState | str,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        rpc_timeout: float | None = None,
    ) -> Iterator[TaskInfo]:
        """Every task of a queue in one state, fetching pages as the iteration goes."""
        token = ""
        while True:
            page = self.list_tasks(
                queue, state, page_size=page_size, page_token=token, rpc_timeout=rpc_timeout
            )
            yield from page.tasks
            token = page.next_page_token
            if not token:
                return

    def pause(self, queue: str, *, rpc_timeout: float | None = None) -> None:
        """Stop leasing from a queue (enqueue still works). Idempotent."""
        request = inspect_service_pb2.PauseQueueRequest(queue=queue)
        self._invoke(self._inspect.PauseQueue, request, rpc_timeout)

    def resume(self, queue: str, *, rpc_timeout: float | None = None) -> None:
        """Resume leasing from a paused queue. Idempotent."""
        request = inspect_service_pb2.ResumeQueueRequest(queue=queue)
        self._invoke(self._inspect.ResumeQueue, request, rpc_timeout)

    def cancel(self, queue: str, task_id: str, *, rpc_timeout: float | None = None) -> TaskInfo:
        """Ask the worker running an active task to stop; :class:`WrongState` if not active."""
        request = inspect_service_pb2.CancelTaskRequest(queue=queue, task_id=task_id)
        return convert.task_info(self._invoke(self._inspect.CancelTask, request, rpc_timeout).task)

    def run(self, queue: str, task_id: str, *, rpc_timeout: float | None = None) -> TaskInfo:
        """Make a scheduled, retry or archived task pending now; :class:`WrongState` otherwise."""
        request = inspect_service_pb2.RunTaskRequest(queue=queue, task_id=task_id)
        return convert.task_info(self._invoke(self._inspect.RunTask, request, rpc_timeout).task)

    def archive(self, queue: str, task_id: str, *, rpc_timeout: float | None = None) -> TaskInfo:
        """Dead-letter a pending, scheduled or retry task; :class:`WrongState` otherwise."""
        request = inspect_service_pb2.ArchiveTaskRequest(queue=queue, task_id=task_id)
        response = self._invoke(self._inspect.ArchiveTask, request, rpc_timeout)
        return convert.task_info(response.task)

    def delete(self, queue: str, task_id: str, *, rpc_timeout: float | None = None) -> None:
        """Delete a task that is not active; :class:`WrongState` for an active one."""
        request = inspect_service_pb2.DeleteTaskRequest(queue=queue, task_id=task_id)
        self._invoke(self._inspect.DeleteTask, request, rpc_timeout)
