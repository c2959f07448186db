"""Operator methods of :class:`Client` and :class:`AsyncClient` (mixed in): queue history,
bulk run/archive/delete, search, queue deletion and server info.

The reads (:meth:`~OperationsMethods.queue_history`, :meth:`~OperationsMethods.search_tasks`,
:meth:`~OperationsMethods.server_info`) are idempotent and retried on UNAVAILABLE like the other
Inspect reads. The bulk operations and :meth:`~OperationsMethods.delete_queue` are never retried
automatically: a call that went through but whose answer was lost would be repeated and answer
a different count (or QUEUE_NOT_FOUND); call again yourself if you want to.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from leasq.v1 import inspect_service_pb2 as pb
from leasq.v1 import inspect_service_pb2_grpc as pb_grpc
from leasq_sdk.base import DEFAULT_PAGE_SIZE
from leasq_sdk.convert import Seconds
from leasq_sdk.models import TaskInfo, TaskState
from leasq_sdk.operations import (
    QueueHistory,
    SearchPage,
    ServerInfo,
    bulk_request,
    history_request,
    queue_history,
    search_page,
    search_request,
    server_info,
)

#: GetQueueHistory's default number of days.
DEFAULT_HISTORY_DAYS = 7


class OperationsMethods:
    """Sync operator calls; the client provides ``_invoke`` and ``_inspect_stub``."""

    _invoke: Callable[..., Any]

    def _inspect_stub(self) -> pb_grpc.InspectServiceStub:
        raise NotImplementedError

    def queue_history(self, queue: str, *, days: int = DEFAULT_HISTORY_DAYS,
                      rpc_timeout: float | None = None) -> QueueHistory:
        """Attempts finished and failed per UTC day for the last ``days`` days (1-90), today
        first (days without attempts hold zeros), and the queue's totals."""
        response = self._invoke(self._inspect_stub().GetQueueHistory,
                                history_request(queue, days), rpc_timeout)
        return queue_history(queue, response)

    def run_all(self, queue: str, state: TaskState | str, *, type: str | None = None,
                error_type: str | None = None, older_than: Seconds | None = None,
                rpc_timeout: float | None = None) -> int:
        """Make every SCHEDULED, RETRY or ARCHIVED task of ``state`` that matches the filter
        pending now (retry counts kept); how many moved. ``older_than``: only tasks enqueued
        at least this long ago (seconds or timedelta). Not retried automatically."""
        request = bulk_request("run", queue, state, type=type, error_type=error_type,
                               older_than=older_than)
        return int(self._invoke(self._inspect_stub().RunAllTasks, request,
                                rpc_timeout).affected)

    def archive_all(self, queue: str, state: TaskState | str, *, type: str | None = None,
                    error_type: str | None = None, older_than: Seconds | None = None,
                    rpc_timeout: float | None = None) -> int:
        """Archive every PENDING, SCHEDULED or RETRY task of ``state`` that matches the filter
        (unique locks released); how many. Not retried automatically."""
        request = bulk_request("archive", queue, state, type=type, error_type=error_type,
                               older_than=older_than)
        return int(self._invoke(self._inspect_stub().ArchiveAllTasks, request,
                                rpc_timeout).affected)

    def delete_all(self, queue: str, state: TaskState | str, *, type: str | None = None,
                   error_type: str | None = None, older_than: Seconds | None = None,
                   rpc_timeout: float | None = None) -> int:
        """Delete every task of ``state`` (not ACTIVE nor AGGREGATING) that matches the filter
        (unique locks released); how many. Not retried automatically."""
        request = bulk_request("delete", queue, state, type=type, error_type=error_type,
                               older_than=older_than)
        return int(self._invoke(self._inspect_stub().DeleteAllTasks, request,
                                rpc_timeout).affected)

    def search_tasks(self, queue: str, state: TaskState | str, *, id_prefix: str = "",
                     type: str = "", payload_contains: bytes | str = b"", error_type: str = "",
                     page_size: int = DEFAULT_PAGE_SIZE, page_token: str = "",
                     rpc_timeout: float | None = None) -> SearchPage:
        """One page of the tasks of ``state`` matching every given criterion (at least one),
        oldest first. A page may hold fewer matches than ``page_size`` while its
        ``next_page_token`` is set: each call examines at most 10,000 tasks."""
        request = search_request(queue, state, id_prefix=id_prefix, type=type,
                                 payload_contains=payload_contains, error_type=error_type,
                                 page_size=page_size, page_token=page_token)
        return search_page(self._invoke(self._inspect_stub().SearchTasks, request, rpc_timeout))

    def iter_search(self, queue: str, state: TaskState | str, *, id_prefix: str = "",
                    type: str = "", payload_contains: bytes | str = b"", error_type: str = "",
                    page_size: int = DEFAULT_PAGE_SIZE, rpc_timeout: float | None = None
                    ) -> Iterator[TaskInfo]:
        """Every match of :meth:`search_tasks`, fetching pages as the iteration goes."""
        token = ""
        while True:
            page = self.search_tasks(queue, state, id_prefix=id_prefix, type=type,
                                     payload_contains=payload_contains, error_type=error_type,
                                     page_size=page_size, page_token=token,
                                     rpc_timeout=rpc_timeout)
            yield from page.tasks
            token = page.next_page_token
            if not token:
                return

    def delete_queue(self, queue: str, *, force: bool = False,
                     rpc_timeout: float | None = None) -> int:
        """Forget a queue (tasks, groups, counters, settings, paused flag); how many tasks went
        with it. :class:`QueueNotEmpty` while it holds tasks unless ``force``;
        :class:`WrongState` while a task is active; :class:`QueueNotFound` for an unknown
        queue. Not retried automatically."""
        request = pb.DeleteQueueRequest(queue=queue, force=force)
        return int(self._invoke(self._inspect_stub().DeleteQueue, request,
                                rpc_timeout).deleted_tasks)

    def server_info(self, *, rpc_timeout: float | None = None) -> ServerInfo:
        """The broker's version and start, and the state of its Redis."""
        return server_info(self._invoke(self._inspect_stub().GetServerInfo,
                                        pb.GetServerInfoRequest(), rpc_timeout))


class AsyncOperationsMethods:
    """The same calls for the asyncio client, awaited."""

    _invoke: Callable[..., Awaitable[Any]]

    def _inspect_stub(self) -> pb_grpc.InspectServiceAsyncStub:
        raise NotImplementedError

    async def queue_history(self, queue: str, *, days: int = DEFAULT_HISTORY_DAYS,
                            rpc_timeout: float | None = None) -> QueueHistory:
        """See :meth:`Client.queue_history`."""
        response = await self._invoke(self._inspect_stub().GetQueueHistory,
                                      history_request(queue, days), rpc_timeout)
        return queue_history(queue, response)

    async def run_all(self, queue: str, state: TaskState | str, *, type: str | None = None,
                      error_type: str | None = None, older_than: Seconds | None = None,
                      rpc_timeout: float | None = None) -> int:
        """See :meth:`Client.run_all`."""
        request = bulk_request("run", queue, state, type=type, error_type=error_type,
                               older_than=older_than)
        response = await self._invoke(self._inspect_stub().RunAllTasks, request, rpc_timeout)
        return int(response.affected)

    async def archive_all(self, queue: str, state: TaskState | str, *, type: str | None = None,
                          error_type: str | None = None, older_than: Seconds | None = None,
                          rpc_timeout: float | None = None) -> int:
        """See :meth:`Client.archive_all`."""
        request = bulk_request("archive", queue, state, type=type, error_type=error_type,
                               older_than=older_than)
        response = await self._invoke(self._inspect_stub().ArchiveAllTasks, request,
                                      rpc_timeout)
        return int(response.affected)

    async def delete_all(self, queue: str, state: TaskState | str, *, type: str | None = None,
                         error_type: str | None = None, older_than: Seconds | None = None,
                         rpc_timeout: float | None = None) -> int:
        """See :meth:`Client.delete_all`."""
        request = bulk_request("delete", queue, state, type=type, error_type=error_type,
                               older_than=older_than)
        response = await self._invoke(self._inspect_stub().DeleteAllTasks, request,
                                      rpc_timeout)
        return int(response.affected)

    async def search_tasks(self, queue: str, state: TaskState | str, *, id_prefix: str = "",
                           type: str = "", payload_contains: bytes | str = b"",
                           error_type: str = "", page_size: int = DEFAULT_PAGE_SIZE,
                           page_token: str = "", rpc_timeout: float | None = None
                           ) -> SearchPage:
        """See :meth:`Client.search_tasks`."""
        request = search_request(queue, state, id_prefix=id_prefix, type=type,
                                 payload_contains=payload_contains, error_type=error_type,
                                 page_size=page_size, page_token=page_token)
        return search_page(await self._invoke(self._inspect_stub().SearchTasks, request,
                                              rpc_timeout))

    async def iter_search(self, queue: str, state: TaskState | str, *, id_prefix: str = "",
                          type: str = "", payload_contains: bytes | str = b"",
                          error_type: str = "", page_size: int = DEFAULT_PAGE_SIZE,
                          rpc_timeout: float | None = None) -> AsyncIterator[TaskInfo]:
        """See :meth:`Client.iter_search`."""
        token = ""
        while True:
            page = await self.search_tasks(queue, state, id_prefix=id_prefix, type=type,
                                           payload_contains=payload_contains,
                                           error_type=error_type, page_size=page_size,
                                           page_token=token, rpc_timeout=rpc_timeout)
            for task in page.tasks:
                yield task
            token = page.next_page_token
            if not token:
                return

    async def delete_queue(self, queue: str, *, force: bool = False,
                           rpc_timeout: float | None = None) -> int:
        """See :meth:`Client.delete_queue`."""
        request = pb.DeleteQueueRequest(queue=queue, force=force)
        response = await self._invoke(self._inspect_stub().DeleteQueue, request, rpc_timeout)
        return int(response.deleted_tasks)

    async def server_info(self, *, rpc_timeout: float | None = None) -> ServerInfo:
        """See :meth:`Client.server_info`."""
        return server_info(await self._invoke(self._inspect_stub().GetServerInfo,
                                              pb.GetServerInfoRequest(), rpc_timeout))
