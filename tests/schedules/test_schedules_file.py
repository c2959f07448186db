"""``leasq serve --schedules FILE``: applied at start, re-applied on change, bad files refused."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
import pytest
from broker_process import BrokerFactory, ProcessStartError

from leasq.v1 import schedule_service_pb2 as pb
from leasq.v1 import schedule_service_pb2_grpc

REPORT = """
[[schedule]]
name = "monthly-report"
spec = "0 9 1 * *"
time_zone = "Europe/Berlin"
type = "report:monthly"
queue = "reports"
payload = { month = "previous" }
timeout = "10m"
catch_up = "one"
"""
CLEANUP = """
[[schedule]]
name = "cleanup"
spec = "@every 5m"
type = "cleanup:expired"
"""


def write(path: Path, text: str) -> None:
    """Replace the file atomically, as editors and config management do."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


async def names(stub: schedule_service_pb2_grpc.ScheduleServiceStub) -> list[str]:
    listed = await stub.ListSchedules(pb.ListSchedulesRequest())
    return [s.name for s in listed.schedules]


async def until(condition_text: str, check: Callable[[], Awaitable[bool]],
                within: float = 10.0) -> None:
    """Wait for an outcome that another process produces on its own (a file watcher)."""
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for: {condition_text}"
        await asyncio.sleep(0.05)


async def test_the_file_is_applied_at_start_and_again_when_it_changes(
    broker_factory: BrokerFactory, tmp_path: Path
) -> None:
    path = tmp_path / "schedules.toml"
    write(path, REPORT + CLEANUP)
    broker = broker_factory(schedules=str(path))
    async with grpc.aio.insecure_channel(broker.address) as channel:
        stub = schedule_service_pb2_grpc.ScheduleServiceStub(channel)
        assert await names(stub) == ["cleanup", "monthly-report"]
        report = (await stub.GetSchedule(pb.GetScheduleRequest(name="monthly-report"))).schedule
        assert (report.time_zone, report.catch_up, report.template.queue,
                report.template.timeout.seconds, report.template.payload) == (
            "Europe/Berlin", pb.CATCH_UP_POLICY_ONE, "reports", 600, b'{"month":"previous"}')
        assert report.template.headers["content-type"] == "application/json"

        write(path, CLEANUP.replace("@every 5m", "@every 10m"))

        async def cleanup_only() -> bool:
            current = await stub.ListSchedules(pb.ListSchedulesRequest())
            return [(s.name, s.spec) for s in current.schedules] == [("cleanup", "@every 10m")]

        await until("the changed file applied", cleanup_only)

        broker.expect_log("schedules file refused")
        write(path, CLEANUP + "\n[[schedule]]\nname = \"broken\"\nspec = \"@nope\"\ntype = \"t\"\n")
        await until("the bad edit reported",
                    lambda: _logged(broker.log_path, "schedules file refused"))
        assert "schedules.toml:9: schedule #2 spec" in broker.log_text()
        assert await cleanup_only()


async def _logged(path: Path, text: str) -> bool:
    return text in await asyncio.to_thread(path.read_text, errors="replace")


@pytest.mark.parametrize(("content", "message"), [
    (REPORT + '\n[[schedule]]\nname = "x"\ntype = "t"\nspec = "0 25 * * *"\n',
     "schedules.toml:15: schedule #2 spec: invalid cron spec"),
    (REPORT.replace('time_zone = "Europe/Berlin"', 'time_zone = "Europe/Nowhere"'),
     "schedules.toml:5: schedule #1 time_zone: unknown time zone"),
    (REPORT.replace("timeout = \"10m\"", "timeout = \"ten minutes\""),
     "schedules.toml:9: schedule #1 timeout: invalid duration"),
    (REPORT + REPORT,
     "schedules.toml:13: schedule #2 name: the name 'monthly-report' is used twice"),
    ("[[schedule]\nname=", "schedules.toml: not valid TOML"),
    (REPORT.replace("queue =", "queues ="), "schedules.toml:7: schedule #1 queues: unknown field"),
])
def test_a_bad_file_stops_the_broker_at_start_naming_the_line(
    broker_factory: BrokerFactory, tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "schedules.toml"
    write(path, content)
    with pytest.raises(ProcessStartError, match="exited with 1") as failed:
        broker_factory(schedules=str(path))
    assert message in str(failed.value)
