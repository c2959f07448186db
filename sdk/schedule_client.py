"""Schedule management methods of :class:`Client` and :class:`AsyncClient` (mixed in).

Every call but :meth:`trigger_schedule` and :meth:`delete_schedule` is idempotent and retried
on UNAVAILABLE like the Inspect reads; a trigger is never retried automatically (a retry could
fire twice), and neither is a delete (a retry of a delete that went through would answer
:class:`ScheduleNotFound`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from leasq.v1 import schedule_service_pb2 as pb
from leasq.v1 import schedule_service_pb2_grpc as pb_grpc
from leasq_sdk import convert
from leasq_sdk.models import EnqueuedTask
from leasq_sdk.schedules import Schedule, ScheduleFire, ScheduleInfo, fire, from_proto, to_proto

PAGE_SIZE = 500


class ScheduleMethods:
    """Sync schedule calls; the client provides ``_invoke`` and ``_schedule_stubs``."""

    _invoke: Callable[..., Any]

    def _schedule_stubs(self) -> tuple[pb_grpc.ScheduleServiceStub, pb_grpc.ScheduleServiceStub]:
        raise NotImplementedError

    def upsert_schedule(self, schedule: Schedule, *, rpc_timeout: float | None = None
                        ) -> ScheduleInfo:
        """Create or replace a schedule by name; its next tick is kept if spec, time zone and
        queue are unchanged. :class:`InvalidArgument` names a refused field."""
        request = pb.UpsertScheduleRequest(schedule=to_proto(schedule))
        stub = self._schedule_stubs()[0]
        return from_proto(self._invoke(stub.UpsertSchedule, request, rpc_timeout).schedule)

    def get_schedule(self, name: str, *, rpc_timeout: float | None = None) -> ScheduleInfo:
        """One schedule; :class:`ScheduleNotFound` if there is none."""
        stub = self._schedule_stubs()[0]
        response = self._invoke(stub.GetSchedule, pb.GetScheduleRequest(name=name), rpc_timeout)
        return from_proto(response.schedule)

    def list_schedules(self, *, rpc_timeout: float | None = None) -> list[ScheduleInfo]:
        """Every schedule, ordered by name."""
        stub, out, token = self._schedule_stubs()[0], [], ""
        while True:
            request = pb.ListSchedulesRequest(page_size=PAGE_SIZE, page_token=token)
            page = self._invoke(stub.ListSchedules, request, rpc_timeout)
            out += [from_proto(s) for s in page.schedules]
            token = page.next_page_token
            if not token:
                return out

    def delete_schedule(self, name: str, *, rpc_timeout: float | None = None) -> None:
        """Delete a schedule (tasks it fired stay); :class:`ScheduleNotFound` if none."""
        stub = self._schedule_stubs()[1]
        self._invoke(stub.DeleteSchedule, pb.DeleteScheduleRequest(name=name), rpc_timeout)

    def pause_schedule(self, name: str, *, rpc_timeout: float | None = None) -> ScheduleInfo:
        """Stop firing; ticks while paused never fire."""
        stub = self._schedule_stubs()[0]
        response = self._invoke(stub.PauseSchedule, pb.PauseScheduleRequest(name=name),
                                rpc_timeout)
        return from_proto(response.schedule)

    def resume_schedule(self, name: str, *, rpc_timeout: float | None = None) -> ScheduleInfo:
        """Fire again from the first tick after now."""
        stub = self._schedule_stubs()[0]
        response = self._invoke(stub.ResumeSchedule, pb.ResumeScheduleRequest(name=name),
                                rpc_timeout)
        return from_proto(response.schedule)

    def trigger_schedule(self, name: str, *, rpc_timeout: float | None = None) -> EnqueuedTask:
        """Enqueue the schedule's task now, outside its spec."""
        stub = self._schedule_stubs()[1]
        response = self._invoke(stub.TriggerSchedule, pb.TriggerScheduleRequest(name=name),
                                rpc_timeout)
        return convert.enqueued_task(response.task)

    def schedule_fires(self, name: str, *, limit: int = 50, rpc_timeout: float | None = None
                       ) -> list[ScheduleFire]:
        """The schedule's most recent fires (at most 50), newest first."""
        stub = self._schedule_stubs()[0]
        request = pb.ListScheduleFiresRequest(name=name, limit=limit)
        return [fire(f) for f in self._invoke(stub.ListScheduleFires, request,
                                              rpc_timeout).fires]


class AsyncScheduleMethods:
    """The same calls for the asyncio client, awaited."""

    _invoke: Callable[..., Awaitable[Any]]

    def _schedule_stubs(self) -> tuple[pb_grpc.ScheduleServiceAsyncStub,
                                       pb_grpc.ScheduleServiceAsyncStub]:
        raise NotImplementedError

    async def upsert_schedule(self, schedule: Schedule, *, rpc_timeout: float | None = None
                              ) -> ScheduleInfo:
        """See :meth:`Client.upsert_schedule`."""
        request = pb.UpsertScheduleRequest(schedule=to_proto(schedule))
        stub = self._schedule_stubs()[0]
        return from_proto((await self._invoke(stub.UpsertSchedule, request,
                                              rpc_timeout)).schedule)

    async def get_schedule(self, name: str, *, rpc_timeout: float | None = None
                           ) -> ScheduleInfo:
        """See :meth:`Client.get_schedule`."""
        stub = self._schedule_stubs()[0]
        response = await self._invoke(stub.GetSchedule, pb.GetScheduleRequest(name=name),
                                      rpc_timeout)
        return from_proto(response.schedule)

    async def list_schedules(self, *, rpc_timeout: float | None = None) -> list[ScheduleInfo]:
        """See :meth:`Client.list_schedules`."""
        stub, out, token = self._schedule_stubs()[0], [], ""
        while True:
            request = pb.ListSchedulesRequest(page_size=PAGE_SIZE, page_token=token)
            page = await self._invoke(stub.ListSchedules, request, rpc_timeout)
            out += [from_proto(s) for s in page.schedules]
            token = page.next_page_token
            if not token:
                return out

    async def delete_schedule(self, name: str, *, rpc_timeout: float | None = None) -> None:
        """See :meth:`Client.delete_schedule`."""
        stub = self._schedule_stubs()[1]
        await self._invoke(stub.DeleteSchedule, pb.DeleteScheduleRequest(name=name), rpc_timeout)

    async def pause_schedule(self, name: str, *, rpc_timeout: float | None = None
                             ) -> ScheduleInfo:
        """See :meth:`Client.pause_schedule`."""
        stub = self._schedule_stubs()[0]
        response = await self._invoke(stub.PauseSchedule, pb.PauseScheduleRequest(name=name),
                                      rpc_timeout)
        return from_proto(response.schedule)

    async def resume_schedule(self, name: str, *, rpc_timeout: float | None = None
                              ) -> ScheduleInfo:
        """See :meth:`Client.resume_schedule`."""
        stub = self._schedule_stubs()[0]
        response = await self._invoke(stub.ResumeSchedule, pb.ResumeScheduleRequest(name=name),
                                      rpc_timeout)
        return from_proto(response.schedule)

    async def trigger_schedule(self, name: str, *, rpc_timeout: float | None = None
                               ) -> EnqueuedTask:
        """See :meth:`Client.trigger_schedule`."""
        stub = self._schedule_stubs()[1]
        response = await self._invoke(stub.TriggerSchedule,
                                      pb.TriggerScheduleRequest(name=name), rpc_timeout)
        return convert.enqueued_task(response.task)

    async def schedule_fires(self, name: str, *, limit: int = 50,
                             rpc_timeout: float | None = None) -> list[ScheduleFire]:
        """See :meth:`Client.schedule_fires`."""
        stub = self._schedule_stubs()[0]
        request = pb.ListScheduleFiresRequest(name=name, limit=limit)
        response = await self._invoke(stub.ListScheduleFires, request, rpc_timeout)
        return [fire(f) for f in response.fires]
