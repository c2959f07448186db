"""ScheduleService over gRPC on a real broker: the calls, their refusals, fired tasks leased."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from rpc_testing import lease_request, refusal

from leasq.v1 import broker_service_pb2_grpc, schedule_service_pb2_grpc, task_pb2
from leasq.v1 import schedule_service_pb2 as pb


@pytest.fixture
def schedule_stub(grpc_channel: grpc.aio.Channel) -> schedule_service_pb2_grpc.ScheduleServiceStub:
    return schedule_service_pb2_grpc.ScheduleServiceStub(grpc_channel)


def schedule(name: str = "nightly", spec: str = "0 3 * * *", **fields: object) -> pb.Schedule:
    template = pb.TaskTemplate(type="cleanup:expired", queue="maintenance", payload=b"{}")
    return pb.Schedule(name=name, spec=spec, template=template, **fields)  # type: ignore[arg-type]


async def test_schedules_are_created_read_listed_paused_resumed_and_deleted(
    schedule_stub: schedule_service_pb2_grpc.ScheduleServiceStub,
) -> None:
    created = await schedule_stub.UpsertSchedule(pb.UpsertScheduleRequest(
        schedule=schedule(time_zone="Europe/Berlin", jitter=Duration(seconds=30))))
    assert created.created and created.schedule.HasField("next_fire_at")
    assert created.schedule.catch_up == pb.CATCH_UP_POLICY_SKIP
    again = await schedule_stub.UpsertSchedule(pb.UpsertScheduleRequest(
        schedule=schedule(time_zone="Europe/Berlin")))
    assert not again.created and again.schedule.next_fire_at == created.schedule.next_fire_at
    await schedule_stub.UpsertSchedule(pb.UpsertScheduleRequest(schedule=schedule("hourly",
                                                                                  "@hourly")))
    page = await schedule_stub.ListSchedules(pb.ListSchedulesRequest(page_size=1))
    assert [s.name for s in page.schedules] == ["hourly"] and page.total_size == 2
    rest = await schedule_stub.ListSchedules(pb.ListSchedulesRequest(
        page_size=1, page_token=page.next_page_token))
    assert [s.name for s in rest.schedules] == ["nightly"] and rest.next_page_token == ""
    paused = await schedule_stub.PauseSchedule(pb.PauseScheduleRequest(name="nightly"))
    assert paused.schedule.paused and not paused.schedule.HasField("next_fire_at")
    resumed = await schedule_stub.ResumeSchedule(pb.ResumeScheduleRequest(name="nightly"))
    assert not resumed.schedule.paused and resumed.schedule.HasField("next_fire_at")
    await schedule_stub.DeleteSchedule(pb.DeleteScheduleRequest(name="nightly"))
    gone = await refusal(schedule_stub.GetSchedule(pb.GetScheduleRequest(name="nightly")))
    assert (gone.code, gone.reason) == (grpc.StatusCode.NOT_FOUND, "SCHEDULE_NOT_FOUND")


async def test_a_triggered_fire_is_leased_with_the_schedule_headers_and_recorded(
    schedule_stub: schedule_service_pb2_grpc.ScheduleServiceStub,
    broker_stub: broker_service_pb2_grpc.BrokerServiceStub,
) -> None:
    await schedule_stub.UpsertSchedule(pb.UpsertScheduleRequest(schedule=schedule()))
    fired = await schedule_stub.TriggerSchedule(pb.TriggerScheduleRequest(name="nightly"))
    assert fired.task.id.startswith("sch:nightly:manual:")
    leased = await broker_stub.Lease(lease_request("maintenance"))
    [task] = leased.tasks
    assert (task.id, task.type, task.headers["leasq-schedule"]) == (
        fired.task.id, "cleanup:expired", "nightly")
    history = await schedule_stub.ListScheduleFires(pb.ListScheduleFiresRequest(name="nightly"))
    [entry] = history.fires
    assert (entry.status, entry.task_id, entry.task_state) == (
        pb.FIRE_STATUS_MANUAL, fired.task.id, task_pb2.TASK_STATE_ACTIVE)


async def test_an_interval_schedule_fires_on_its_own(
    schedule_stub: schedule_service_pb2_grpc.ScheduleServiceStub,
    broker_stub: broker_service_pb2_grpc.BrokerServiceStub,
) -> None:
    created = await schedule_stub.UpsertSchedule(pb.UpsertScheduleRequest(
        schedule=schedule("tick", "@every 1s")))
    leased = await broker_stub.Lease(lease_request("maintenance", wait=Duration(seconds=5)))
    [task] = leased.tasks
    tick_ms = created.schedule.next_fire_at.ToMilliseconds()
    assert task.id == f"sch:tick:{tick_ms}"


@pytest.mark.parametrize(("message", "field"), [
    (pb.Schedule(name="x", spec="@daily"), "schedule.template"),
    (schedule(spec="* * *"), "schedule.spec"),
    (schedule(time_zone="Atlantis/Capital"), "schedule.time_zone"),
    (schedule(name="no spaces"), "schedule.name"),
    (schedule(catch_up=9), "schedule.catch_up"),
    (schedule(overlap=7), "schedule.overlap"),
    (schedule(jitter=Duration(seconds=7200)), "schedule.jitter"),
    (pb.Schedule(name="x", spec="@daily", template=pb.TaskTemplate(type="t", queue="a{b}")),
     "schedule.template.queue"),
    (pb.Schedule(name="x", spec="@daily", template=pb.TaskTemplate(type="")),
     "schedule.template.type"),
])
async def test_bad_schedules_are_refused_naming_the_field(
    schedule_stub: schedule_service_pb2_grpc.ScheduleServiceStub, message: pb.Schedule,
    field: str,
) -> None:
    refused = await refusal(schedule_stub.UpsertSchedule(pb.UpsertScheduleRequest(
        schedule=message)))
    assert (refused.code, refused.reason, refused.field) == (
        grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD", field)
    listed = await schedule_stub.ListSchedules(pb.ListSchedulesRequest())
    assert listed.total_size == 0


async def test_calls_naming_no_or_a_malformed_schedule_are_refused(
    schedule_stub: schedule_service_pb2_grpc.ScheduleServiceStub,
) -> None:
    missing = await refusal(schedule_stub.TriggerSchedule(pb.TriggerScheduleRequest()))
    assert (missing.code, missing.field) == (grpc.StatusCode.INVALID_ARGUMENT, "name")
    bad = await refusal(schedule_stub.ListScheduleFires(pb.ListScheduleFiresRequest(
        name="a b")))
    assert (bad.code, bad.field) == (grpc.StatusCode.INVALID_ARGUMENT, "name")
    limit = await refusal(schedule_stub.ListSchedules(pb.ListSchedulesRequest(page_size=5000)))
    assert (limit.code, limit.field) == (grpc.StatusCode.INVALID_ARGUMENT, "page_size")
