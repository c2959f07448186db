"""``leasq serve --processes N``: one parent, N broker processes on one gRPC and one HTTP port.

Which process answered is read from what each child shows: its ``process`` index on every log
line (the debug ``rpc`` line of each call) and ``leasq_broker_process_info{index, pid}`` on
/metrics. The kernel spreads new connections over the processes (SO_REUSEPORT hashes the
client's address and port), so each probe opens a fresh connection.
"""

from __future__ import annotations

import json
import os
import signal
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
from broker_process import BrokerFactory, BrokerHandle, ProcessStartError
from waiting import SETTLE, eventually

from leasq.v1 import (
    broker_service_pb2,
    broker_service_pb2_grpc,
    inspect_service_pb2,
    inspect_service_pb2_grpc,
    task_pb2,
)
from leasq_broker.cli import build_parser, resolve_config

# Fresh connections tried before giving up on reaching every process: with two processes and
# a hash over the client port, all landing on one process has a chance of 2**-99.
PROBES = 100


def events(broker: BrokerHandle) -> list[dict[str, Any]]:
    """The JSON log lines of the parent and its children, in order."""
    found = []
    for line in broker.log_text().splitlines():
        if line.startswith("{"):
            found.append(json.loads(line))
    return found


def child_pids(broker: BrokerHandle) -> dict[int, int]:
    """Process index -> pid of its latest start."""
    return {
        e["process"]: e["pid"] for e in events(broker) if e["event"] == "broker process started"
    }


def http_address(broker: BrokerHandle) -> str:
    (serving,) = [e for e in events(broker) if e["event"] == "broker processes serving"]
    return str(serving["http"])


def alive(pid: int) -> bool:
    """Running (a zombie, dead but not yet reaped, does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def scraped_index(http: str) -> str:
    """The index of the process that answered one /metrics scrape on a new connection."""
    with urllib.request.urlopen(f"http://{http}/metrics", timeout=SETTLE) as answer:
        for line in answer.read().decode().splitlines():
            if line.startswith("leasq_broker_process_info{"):
                return line.split('index="', 1)[1].split('"', 1)[0]
    raise AssertionError("no leasq_broker_process_info on /metrics")


def processes_that_logged_calls(broker: BrokerHandle) -> set[int]:
    return {
        e["process"]
        for e in events(broker)
        if e["event"] == "rpc" and e.get("method", "").endswith("GetServerInfo")
    }


async def server_info_on_a_new_connection(address: str) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = inspect_service_pb2_grpc.InspectServiceStub(channel)
        await stub.GetServerInfo(inspect_service_pb2.GetServerInfoRequest(), timeout=SETTLE)


async def enqueue_on_a_new_connection(address: str, queue: str) -> str:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = broker_service_pb2_grpc.BrokerServiceStub(channel)
        answer = await stub.Enqueue(
            broker_service_pb2.EnqueueRequest(
                task=task_pb2.TaskSpec(queue=queue, type="probe", payload=b"{}")
            ),
            timeout=SETTLE,
        )
        return str(answer.task.id)


async def test_two_processes_serve_grpc_and_http_on_one_port_each_and_calls_reach_both(
    broker_factory: BrokerFactory,
) -> None:
    broker = broker_factory(processes=2, http_listen="127.0.0.1:0", log_level="debug")
    assert sorted(child_pids(broker)) == [1, 2]

    scraped = set()
    for _ in range(PROBES):
        scraped.add(scraped_index(http_address(broker)))
        if scraped == {"1", "2"}:
            break
    assert scraped == {"1", "2"}

    async def both_logged() -> bool:
        return processes_that_logged_calls(broker) == {1, 2}

    for _ in range(PROBES):
        await server_info_on_a_new_connection(broker.address)
        if await both_logged():
            break
    await eventually(both_logged, SETTLE, "GetServerInfo calls answered by both processes")


def test_sigterm_to_the_parent_stops_every_process_with_exit_code_zero(
    broker_factory: BrokerFactory,
) -> None:
    broker = broker_factory(processes=2, grace=5)
    assert broker.process is not None
    pids = [broker.process.pid, *child_pids(broker).values()]
    assert len(pids) == 3 and all(alive(pid) for pid in pids)

    assert broker.stop() == 0

    assert not [pid for pid in pids if alive(pid)]
    stopped = {e.get("process") for e in events(broker) if e["event"] == "broker stopped"}
    assert stopped == {1, 2}


async def test_a_process_killed_with_sigkill_is_restarted_and_the_service_keeps_answering(
    broker_factory: BrokerFactory,
) -> None:
    broker = broker_factory(processes=2)
    killed = child_pids(broker)[1]
    os.kill(killed, signal.SIGKILL)

    async def restarted() -> bool:
        return child_pids(broker)[1] != killed and not alive(killed)

    await eventually(restarted, SETTLE, "process 1 started again")
    # Meanwhile and after, every new connection is answered (by whichever process serves).
    ids = {await enqueue_on_a_new_connection(broker.address, "after-kill") for _ in range(20)}
    assert len(ids) == 20

    async def serving_again() -> bool:
        lines = [e for e in events(broker) if e["event"] == "broker serving"]
        return [e["process"] for e in lines].count(1) == 2

    await eventually(serving_again, SETTLE, "the restarted process 1 serving")
    (warning,) = [
        e
        for e in events(broker)
        if e["event"] == "broker process exited unexpectedly; restarting it"
    ]
    assert (warning["level"], warning["process"], warning["pid"]) == ("warning", 1, killed)
    assert alive(child_pids(broker)[2])


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def redis_servers_of(data_dir: Path) -> list[int]:
    """Pids of the redis-server processes whose command line names ``data_dir``."""
    marker = str(data_dir.resolve()).encode()
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if b"redis-server" in cmdline and marker in cmdline and alive(int(proc.name)):
                found.append(int(proc.name))
    return found


async def test_without_a_redis_url_the_parent_runs_exactly_one_embedded_redis_for_all(
    broker_factory: BrokerFactory, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    broker = broker_factory(redis_url=None, data_dir=data_dir, processes=2)
    assert broker.process is not None

    (redis_pid,) = redis_servers_of(data_dir)
    assert parent_of(redis_pid) == broker.process.pid
    ids = {await enqueue_on_a_new_connection(broker.address, "shared") for _ in range(10)}
    assert len(ids) == 10

    assert broker.stop() == 0
    assert redis_servers_of(data_dir) == []


def test_one_process_is_the_broker_itself_without_a_parent(
    broker_factory: BrokerFactory,
) -> None:
    broker = broker_factory(processes=1)

    assert child_pids(broker) == {}
    serving = next(e for e in events(broker) if e["event"] == "broker serving")
    assert "process" not in serving


def test_the_processes_flag_takes_a_count_or_auto_also_from_the_environment(
    capsys: pytest.CaptureFixture[str],
) -> None:
    auto, _ = resolve_config(build_parser().parse_args(["serve", "--processes", "auto"]), {})
    assert auto.processes == len(os.sched_getaffinity(0))
    from_env, _ = resolve_config(build_parser().parse_args(["serve"]), {"LEASQ_PROCESSES": "3"})
    assert from_env.processes == 3
    assert resolve_config(build_parser().parse_args(["serve"]), {})[0].processes == 1

    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--processes", "0"])
    assert "must be a positive integer or auto, got '0'" in capsys.readouterr().err


async def test_sighup_to_the_parent_reaches_every_process_and_none_stops(
    broker_factory: BrokerFactory,
) -> None:
    broker = broker_factory(processes=2)
    assert broker.process is not None

    broker.process.send_signal(signal.SIGHUP)

    async def both_reloaded() -> bool:
        return {e.get("process") for e in events(broker)
                if e["event"].startswith("SIGHUP: reloading")} == {1, 2}  # fmt: skip

    await eventually(both_reloaded, SETTLE, "SIGHUP reloads logged by both processes")
    assert broker.running
    assert await enqueue_on_a_new_connection(broker.address, "after-hup")
    assert not [e for e in events(broker) if e["event"] == "broker shutting down"]


def test_a_process_failing_before_the_group_serves_stops_the_group_with_exit_code_one(
    broker_factory: BrokerFactory, tmp_path: Path
) -> None:
    schedules = tmp_path / "schedules.toml"
    schedules.write_text("this is [[not toml\n")

    with pytest.raises(ProcessStartError, match="exited with 1 before serving") as failed:
        broker_factory(processes=2, schedules=str(schedules))

    assert "a broker process exited before serving; stopping the others" in str(failed.value)
