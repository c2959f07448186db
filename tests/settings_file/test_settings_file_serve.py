"""``leasq serve --queue-settings-file FILE``: applied at start through the settings use case,
fields it does not name left as they are, re-applied on change, bad files refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest
from broker_process import BrokerFactory, ProcessStartError
from waiting import SETTLE, eventually

from leasq.v1 import inspect_service_pb2 as ipb
from leasq.v1 import inspect_service_pb2_grpc

SETTINGS = """
[[queue]]
name = "email"
max_active = 5
rate_limit = { per_second = 100, burst = 20 }

[[queue]]
name = "digests"
groups = { grace_period = "2s", max_size = 500 }
"""
# The file watcher's debounce (200 ms) plus a loaded machine: no mechanism bounds it tighter.
RELOAD_S = SETTLE


def write(path: Path, text: str) -> None:
    """Replace the file atomically, as editors and config management do."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


async def settings(stub: Any, queue: str) -> ipb.QueueSettings:
    response = await stub.GetQueueSettings(ipb.GetQueueSettingsRequest(queue=queue))
    return response.settings


async def test_the_file_is_applied_at_start_leaving_other_fields_and_again_when_it_changes(
    broker_factory: BrokerFactory, tmp_path: Path
) -> None:
    first = broker_factory()
    async with grpc.aio.insecure_channel(first.address) as channel:
        stub = inspect_service_pb2_grpc.InspectServiceStub(channel)
        # Set before the file exists: the file does not name it, so it stays.
        await stub.UpdateQueueSettings(ipb.UpdateQueueSettingsRequest(
            queue="email", settings=ipb.QueueSettings(groups=ipb.GroupSettings(max_size=7))))
    path = tmp_path / "settings.toml"
    write(path, SETTINGS)
    broker = broker_factory(queue_settings_file=str(path))
    async with grpc.aio.insecure_channel(broker.address) as channel:
        stub = inspect_service_pb2_grpc.InspectServiceStub(channel)
        email = await settings(stub, "email")
        assert (email.max_active, email.rate_limit.per_second, email.rate_limit.burst,
                email.groups.max_size) == (5, 100.0, 20, 7)
        digests = await settings(stub, "digests")
        assert (digests.groups.grace_period.ToMilliseconds(), digests.groups.max_size) == (
            2000, 500)

        write(path, SETTINGS.replace("max_active = 5", "max_active = 9").replace(
            "rate_limit = { per_second = 100, burst = 20 }", 'rate_limit = "default"'))

        async def changed() -> bool:
            email = await settings(stub, "email")
            return email.max_active == 9 and not email.HasField("rate_limit")

        await eventually(changed, RELOAD_S, "the changed file applied")

        broker.expect_log("queue settings file refused")
        write(path, SETTINGS.replace("max_active = 5", "max_active = 2000000"))

        async def reported() -> bool:
            return "queue settings file refused" in broker.log_text()

        await eventually(reported, RELOAD_S, "the bad edit reported")
        assert "queue 'email' max_active" in broker.log_text()
        assert (await settings(stub, "email")).max_active == 9  # unchanged


async def test_the_environment_variable_names_the_file(
    broker_factory: BrokerFactory, tmp_path: Path
) -> None:
    path = tmp_path / "settings.toml"
    write(path, '[[queue]]\nname = "env-q"\nmax_active = 3\n')
    broker = broker_factory(env={"LEASQ_QUEUE_SETTINGS_FILE": str(path)})
    async with grpc.aio.insecure_channel(broker.address) as channel:
        stub = inspect_service_pb2_grpc.InspectServiceStub(channel)
        assert (await settings(stub, "env-q")).max_active == 3


@pytest.mark.parametrize(("content", "message"), [
    (SETTINGS.replace("max_active = 5", "max_active = 2000000"),
     "settings.toml:4: queue 'email' max_active: must be between 1 and 1,000,000"),
    (SETTINGS.replace("per_second = 100", "per_second = -1"),
     "settings.toml:5: queue 'email' rate_limit.per_second: must be between"),
    (SETTINGS.replace('name = "digests"', 'name = "bad queue"'),
     "settings.toml:8: queue 'bad queue' name: invalid queue name"),
    (SETTINGS.replace("max_size = 500", "max_size = 0.5"),
     "settings.toml:9: queue 'digests' groups.max_size: must be a whole number"),
])  # fmt: skip
def test_a_bad_file_stops_the_broker_at_start_naming_the_queue_and_the_field(
    broker_factory: BrokerFactory, tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "settings.toml"
    write(path, content)
    with pytest.raises(ProcessStartError, match="exited with 1") as failed:
        broker_factory(queue_settings_file=str(path))
    assert message in str(failed.value)
