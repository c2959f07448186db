"""The history, bulk, search, queue-deletion and server-info calls of InspectService (mixed
into its servicer)."""

from __future__ import annotations

from typing import Any

import grpc

from leasq.v1 import inspect_service_pb2 as pb
from leasq_broker.edge import operation_converters as oconv
from leasq_broker.edge.status import grpc_edge
from leasq_broker.operations.service import Operations

Context = grpc.aio.ServicerContext[Any, Any]


class OperationsMethods:
    """GetQueueHistory, RunAllTasks, ArchiveAllTasks, DeleteAllTasks, SearchTasks, DeleteQueue,
    GetServerInfo."""

    _operations: Operations

    @grpc_edge
    async def GetQueueHistory(self, request: pb.GetQueueHistoryRequest, context: Context
                              ) -> pb.GetQueueHistoryResponse:
        return oconv.history(await self._operations.history(request.queue, request.days))

    @grpc_edge
    async def RunAllTasks(self, request: pb.RunAllTasksRequest, context: Context
                          ) -> pb.RunAllTasksResponse:
        affected = await self._operations.bulk("run", request.queue, oconv.state(request.state),
                                               oconv.task_filter(request))
        return pb.RunAllTasksResponse(affected=affected)

    @grpc_edge
    async def ArchiveAllTasks(self, request: pb.ArchiveAllTasksRequest, context: Context
                              ) -> pb.ArchiveAllTasksResponse:
        affected = await self._operations.bulk("archive", request.queue,
                                               oconv.state(request.state),
                                               oconv.task_filter(request))
        return pb.ArchiveAllTasksResponse(affected=affected)

    @grpc_edge
    async def DeleteAllTasks(self, request: pb.DeleteAllTasksRequest, context: Context
                             ) -> pb.DeleteAllTasksResponse:
        affected = await self._operations.bulk("delete", request.queue,
                                               oconv.state(request.state),
                                               oconv.task_filter(request))
        return pb.DeleteAllTasksResponse(affected=affected)

    @grpc_edge
    async def SearchTasks(self, request: pb.SearchTasksRequest, context: Context
                          ) -> pb.SearchTasksResponse:
        result = await self._operations.search(
            request.queue, oconv.state(request.state), oconv.criteria(request),
            request.page_size, request.page_token)
        return oconv.search_page(result)

    @grpc_edge
    async def DeleteQueue(self, request: pb.DeleteQueueRequest, context: Context
                          ) -> pb.DeleteQueueResponse:
        deleted = await self._operations.delete_queue(request.queue, request.force)
        return pb.DeleteQueueResponse(deleted_tasks=deleted)

    @grpc_edge
    async def GetServerInfo(self, request: pb.GetServerInfoRequest, context: Context
                            ) -> pb.GetServerInfoResponse:
        return oconv.server_info(await self._operations.server_state())
