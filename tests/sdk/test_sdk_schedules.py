"""Schedules through the SDK (sync and asyncio) against a real broker."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta

import pytest

from leasq_sdk import (
    AsyncClient,
    CatchUp,
    Client,
    FireStatus,
    InvalidArgument,
    Overlap,
    Schedule,
    ScheduleNotFound,
    TaskDef,
    TaskState,
)


@dataclass
class Report:
    month: str


REPORT = TaskDef("report:monthly", Report, queue="reports", max_retry=3, timeout=600)
MONTHLY = REPORT.schedule("monthly-report", "0 9 1 * *", Report(month="previous"),
                          time_zone="Europe/Berlin", catch_up="one", overlap=Overlap.SKIP)


def test_a_taskdef_schedule_round_trips_with_its_defaults_and_policies(client: Client) -> None:
    stored = client.upsert_schedule(MONTHLY)
    s = stored.schedule
    assert (s.name, s.type, s.queue, s.time_zone, s.max_retry, s.timeout) == (
        "monthly-report", "report:monthly", "reports", "Europe/Berlin", 3,
        timedelta(seconds=600))
    assert (s.catch_up, s.overlap) == (CatchUp.ONE, Overlap.SKIP)
    assert json.loads(s.payload) == {"month": "previous"}
    assert stored.next_fire_at is not None and stored.next_fire_at.day == 1
    assert [i.schedule.name for i in client.list_schedules()] == ["monthly-report"]


def test_trigger_pause_resume_history_and_delete(client: Client) -> None:
    client.upsert_schedule(Schedule("cleanup", "@every 1h", "cleanup:expired"))
    fired = client.trigger_schedule("cleanup")
    [entry] = client.schedule_fires("cleanup")
    assert (entry.status, entry.task_id, entry.task_state) == (
        FireStatus.MANUAL, fired.id, TaskState.PENDING)
    assert client.pause_schedule("cleanup").next_fire_at is None
    assert client.resume_schedule("cleanup").next_fire_at is not None
    client.delete_schedule("cleanup")
    with pytest.raises(ScheduleNotFound):
        client.get_schedule("cleanup")


def test_refusals_are_typed_and_name_the_field(client: Client) -> None:
    with pytest.raises(InvalidArgument) as broker_refused:
        client.upsert_schedule(Schedule("bad", "0 9 * *", "t"))
    assert broker_refused.value.field == "schedule.spec"
    with pytest.raises(InvalidArgument) as local:
        client.upsert_schedule(Schedule("bad", "@daily", "t", catch_up="sometimes"))
    assert local.value.field == "schedule.catch_up"


async def test_the_async_client_manages_schedules_too(aclient: AsyncClient) -> None:
    created = await aclient.upsert_schedule(MONTHLY)
    assert (await aclient.get_schedule("monthly-report")).next_fire_at == created.next_fire_at
    fired = await aclient.trigger_schedule("monthly-report")
    assert fired.id.startswith("sch:monthly-report:manual:")
    assert [f.task_id for f in await aclient.schedule_fires("monthly-report")] == [fired.id]
    assert (await aclient.pause_schedule("monthly-report")).schedule.paused
    assert not (await aclient.resume_schedule("monthly-report")).schedule.paused
    assert len(await aclient.list_schedules()) == 1
    await aclient.delete_schedule("monthly-report")
    with pytest.raises(ScheduleNotFound):
        await aclient.get_schedule("monthly-report")
