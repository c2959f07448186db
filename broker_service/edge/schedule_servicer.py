"""The ScheduleService servicer: convert, call the schedules use case, convert back."""

from __future__ import annotations

from typing import Any

import grpc

from leasq.v1 import schedule_service_pb2 as pb
from leasq.v1 import schedule_service_pb2_grpc as pb_grpc
from leasq_broker.edge import converters as conv
from leasq_broker.edge import schedule_converters as sconv
from leasq_broker.edge.status import grpc_edge
from leasq_broker.errors import InvalidField
from leasq_broker.schedules.service import Schedules

Context = grpc.aio.ServicerContext[Any, Any]


class ScheduleServicer(pb_grpc.ScheduleServiceServicer):
    """Schedule management calls."""

    def __init__(self, schedules: Schedules) -> None:
        self._schedules = schedules

    @grpc_edge
    async def UpsertSchedule(self, request: pb.UpsertScheduleRequest, context: Context
                             ) -> pb.UpsertScheduleResponse:
        if not request.HasField("schedule"):
            raise InvalidField("schedule", "is required")
        view, created = await self._schedules.upsert(sconv.schedule_def(request.schedule))
        return pb.UpsertScheduleResponse(schedule=sconv.schedule(view), created=created)

    @grpc_edge
    async def GetSchedule(self, request: pb.GetScheduleRequest, context: Context
                          ) -> pb.GetScheduleResponse:
        view = await self._schedules.get(request.name)
        return pb.GetScheduleResponse(schedule=sconv.schedule(view))

    @grpc_edge
    async def ListSchedules(self, request: pb.ListSchedulesRequest, context: Context
                            ) -> pb.ListSchedulesResponse:
        views, token, total = await self._schedules.page(request.page_size, request.page_token)
        return pb.ListSchedulesResponse(schedules=[sconv.schedule(v) for v in views],
                                        next_page_token=token, total_size=total)

    @grpc_edge
    async def DeleteSchedule(self, request: pb.DeleteScheduleRequest, context: Context
                             ) -> pb.DeleteScheduleResponse:
        await self._schedules.delete(request.name)
        return pb.DeleteScheduleResponse()

    @grpc_edge
    async def PauseSchedule(self, request: pb.PauseScheduleRequest, context: Context
                            ) -> pb.PauseScheduleResponse:
        view = await self._schedules.set_paused(request.name, True)
        return pb.PauseScheduleResponse(schedule=sconv.schedule(view))

    @grpc_edge
    async def ResumeSchedule(self, request: pb.ResumeScheduleRequest, context: Context
                             ) -> pb.ResumeScheduleResponse:
        view = await self._schedules.set_paused(request.name, False)
        return pb.ResumeScheduleResponse(schedule=sconv.schedule(view))

    @grpc_edge
    async def TriggerSchedule(self, request: pb.TriggerScheduleRequest, context: Context
                              ) -> pb.TriggerScheduleResponse:
        result = await self._schedules.trigger(request.name)
        return pb.TriggerScheduleResponse(task=conv.enqueued(result))

    @grpc_edge
    async def ListScheduleFires(self, request: pb.ListScheduleFiresRequest, context: Context
                                ) -> pb.ListScheduleFiresResponse:
        fires = await self._schedules.fires(request.name, request.limit)
        return pb.ListScheduleFiresResponse(fires=[sconv.fire(f) for f in fires])
