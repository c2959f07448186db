"""The group and queue-settings calls of InspectService (mixed into its servicer)."""

from __future__ import annotations

from typing import Any

import grpc

from leasq.v1 import inspect_service_pb2 as pb
from leasq_broker.edge import converters as conv
from leasq_broker.edge import group_converters as gconv
from leasq_broker.edge.status import grpc_edge
from leasq_broker.groups.service import Groups
from leasq_broker.settings.service import QueueSettingsService

Context = grpc.aio.ServicerContext[Any, Any]


class GroupInspectMethods:
    """GetQueueSettings, UpdateQueueSettings, ListGroups, ListGroupMembers, FlushGroup,
    DeleteGroup."""

    _groups: Groups
    _queue_settings: QueueSettingsService

    @grpc_edge
    async def GetQueueSettings(self, request: pb.GetQueueSettingsRequest, context: Context
                               ) -> pb.GetQueueSettingsResponse:
        settings = await self._queue_settings.get(request.queue)
        return pb.GetQueueSettingsResponse(settings=gconv.settings_message(settings))

    @grpc_edge
    async def UpdateQueueSettings(self, request: pb.UpdateQueueSettingsRequest,
                                  context: Context) -> pb.UpdateQueueSettingsResponse:
        settings = await self._queue_settings.update(request.queue,
                                                     gconv.settings_update(request))
        return pb.UpdateQueueSettingsResponse(settings=gconv.settings_message(settings))

    @grpc_edge
    async def ListGroups(self, request: pb.ListGroupsRequest, context: Context
                         ) -> pb.ListGroupsResponse:
        views, token, total = await self._groups.page(request.queue, request.page_size,
                                                      request.page_token)
        return pb.ListGroupsResponse(groups=[gconv.group_info(g) for g in views],
                                     next_page_token=token, total_size=total)

    @grpc_edge
    async def ListGroupMembers(self, request: pb.ListGroupMembersRequest, context: Context
                               ) -> pb.ListGroupMembersResponse:
        ref = gconv.ref(request.group, request.HasField("group"))
        tasks, token, total = await self._groups.members(ref, request.page_size,
                                                         request.page_token)
        return pb.ListGroupMembersResponse(tasks=[conv.task_info(t) for t in tasks],
                                           next_page_token=token, total_size=total)

    @grpc_edge
    async def FlushGroup(self, request: pb.FlushGroupRequest, context: Context
                         ) -> pb.FlushGroupResponse:
        ref = gconv.ref(request.group, request.HasField("group"))
        return gconv.flushed(await self._groups.flush(ref))

    @grpc_edge
    async def DeleteGroup(self, request: pb.DeleteGroupRequest, context: Context
                          ) -> pb.DeleteGroupResponse:
        ref = gconv.ref(request.group, request.HasField("group"))
        return pb.DeleteGroupResponse(deleted=await self._groups.delete(ref))
