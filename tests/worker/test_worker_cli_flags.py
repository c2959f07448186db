"""Each ``leasq worker`` flag does what the README's table says, seen from the outside.

(``--token``, ``--tls`` and refused workers: ``tests/security/test_worker_cli_security.py``;
``--tls-ca``, ``--tls-cert``, ``--tls-key``: ``tests/security/test_mtls_clients.py``.)
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from collections.abc import Iterator
from typing import Any

import grpc.aio
import pytest
from broker_process import BrokerHandle, broker_environment, overrides_to_flags
from cli_worker import CliWorker
from google.protobuf import duration_pb2
from worker_testing import Events, enqueue, get_task

from leasq.v1 import broker_service_pb2_grpc, task_pb2

KEEP = duration_pb2.Duration(seconds=300)


async def test_the_worker_id_flag_is_shown_on_the_tasks_it_leases(
    broker_stub: Any, inspect_stub: Any, spawn_worker: Any, events: Events, queue: str
) -> None:
    task_id = await enqueue(broker_stub, "wait:sync", queue)
    worker = await spawn_worker(name="A", args=["--worker-id", "billing-7"])
    assert (await events.next())[:2] == ("start", task_id)
    info = await get_task(inspect_stub, queue, task_id)
    assert (info.state, info.worker_id) == (task_pb2.TASK_STATE_ACTIVE, "billing-7")
    assert (await worker.wait_log("worker started"))["worker_id"] == "billing-7"
    await events.release(1)
    assert (await events.next())[:2] == ("done", task_id)
    worker.send(signal.SIGTERM)
    assert await worker.wait() == 0


async def test_strict_serves_a_queue_only_while_every_queue_before_it_is_empty(
    broker_stub: Any, spawn_worker: Any, events: Events, queue: str
) -> None:
    later = f"{queue}-later"
    first = [await enqueue(broker_stub, "job", queue) for _ in range(4)]
    then = [await enqueue(broker_stub, "job", later) for _ in range(4)]
    # The worker serves `queue` (weight 1), then `later` at weight 1000: weighted, `later`
    # would go first 1000 times in 1001; strict ignores weights.
    worker = await spawn_worker(name="A", args=["--strict", "--queue", f"{later}=1000",
                                                "--concurrency", "1"])  # fmt: skip
    starts = [task_id for what, task_id, _, _ in await events.take(16) if what == "start"]
    assert (set(starts[:4]), set(starts[4:])) == (set(first), set(then))
    worker.send(signal.SIGTERM)
    assert await worker.wait() == 0


async def test_the_heartbeat_interval_flag_sets_how_often_leases_are_renewed(
    broker_stub: Any, inspect_stub: Any, spawn_worker: Any, events: Events, queue: str
) -> None:
    interval, watch = 0.25, 1.5
    task_id = await enqueue(broker_stub, "wait:sync", queue)
    # The default interval would be 6 / 3 = 2 s: at most one renewal while we watch.
    worker = await spawn_worker(name="A", args=["--lease-duration", "6",
                                                "--heartbeat-interval", str(interval)])  # fmt: skip
    assert (await events.next())[:2] == ("start", task_id)
    expiries = set()
    until = time.monotonic() + watch
    while time.monotonic() < until:
        info = await get_task(inspect_stub, queue, task_id)
        expiries.add(info.lease_expires_at.ToNanoseconds())
        await asyncio.sleep(0.05)
    await events.release(1)
    assert watch / interval / 2 <= len(expiries) <= watch / interval + 2, len(expiries)
    worker.send(signal.SIGTERM)
    assert await worker.wait() == 0


async def test_the_processes_flag_sets_the_size_of_the_process_pool(
    broker: BrokerHandle, broker_stub: Any, inspect_stub: Any, queue: str, redis_server: str
) -> None:
    size = 3
    # Each task waits until `size` of them run at once (in as many processes), then returns
    # its process id; the fourth runs after them in one of the same processes.
    payload = json.dumps({"key": f"pool-pids:{uuid.uuid4().hex[:8]}", "together": size})
    ids = [await enqueue(broker_stub, "pool:pid", queue, payload=payload.encode(), retention=KEEP)
           for _ in range(size + 1)]  # fmt: skip
    worker = await CliWorker.start("worker_apps.pool:registry", [
        "--broker", broker.address, "--queue", queue, "--concurrency", str(size + 1),
        "--processes", str(size)], env={"WORKER_TEST_REDIS": redis_server})  # fmt: skip
    try:
        infos = [await _completed(inspect_stub, queue, task_id, within=20) for task_id in ids]
        worker.process.send_signal(signal.SIGTERM)
        assert await worker.exit_code(within=15) == 0
    finally:
        await worker.kill()
    assert len({int(info.result) for info in infos}) == size


@pytest.fixture
def broker_not_yet_up(redis_server: str, tmp_path_factory: pytest.TempPathFactory
                      ) -> Iterator[BrokerHandle]:  # fmt: skip
    """A broker whose address is chosen but which is not started; stopped at teardown."""
    flags = overrides_to_flags({"redis_url": redis_server, "log_format": "json"})
    handle = BrokerHandle(flags, workdir=tmp_path_factory.mktemp("later-broker"),
                          redis_url=redis_server, data_dir=None, env=broker_environment())
    try:
        yield handle
    finally:
        handle.stop()


async def test_leasq_broker_names_the_broker_and_the_worker_waits_for_it_to_come_up(
    broker_not_yet_up: BrokerHandle, events: Events, queue: str, redis_server: str
) -> None:
    address = broker_not_yet_up.listen
    env = {"LEASQ_BROKER": address, "WORKER_TEST_REDIS": redis_server,
           "WORKER_TEST_EVENTS": events.key, "WORKER_TEST_NAME": "A"}  # fmt: skip
    worker = await CliWorker.start("worker_apps.events:registry", ["--queue", queue], env=env)
    try:
        assert (await worker.wait_log("worker started"))["broker"] == address
        # Nothing listens there yet: the worker keeps trying instead of exiting.
        await asyncio.to_thread(broker_not_yet_up.start)
        async with grpc.aio.insecure_channel(address) as channel:
            stub = broker_service_pb2_grpc.BrokerServiceStub(channel)
            task_id = await enqueue(stub, "job", queue)
        assert [event[:3] for event in await events.take(2, within=10)] == [
            ("start", task_id, "A"), ("done", task_id, "A")]  # fmt: skip
        worker.process.send_signal(signal.SIGTERM)
        assert await worker.exit_code(within=15) == 0
    finally:
        await worker.kill()


async def _completed(inspect: Any, queue: str, task_id: str, within: float) -> Any:
    give_up = time.monotonic() + within
    while (info := await get_task(inspect, queue, task_id)).state != task_pb2.TASK_STATE_COMPLETED:
        assert time.monotonic() < give_up, f"task {task_id} not completed within {within}s: {info}"
        await asyncio.sleep(0.05)
    return info


async def test_sigint_stops_a_worker_as_gracefully_as_sigterm(
    broker_stub: Any, inspect_stub: Any, spawn_worker: Any, events: Events, queue: str
) -> None:
    task_id = await enqueue(broker_stub, "wait:sync", queue, retention=KEEP)
    worker = await spawn_worker(name="A", args=["--shutdown-timeout", "10"])
    assert (await events.next())[:2] == ("start", task_id)
    worker.send(signal.SIGINT)
    await worker.wait_log("shutting down", signal="SIGINT")
    await events.release(1)  # the running task may finish within the shutdown timeout
    assert await worker.wait(within=10) == 0
    info = await get_task(inspect_stub, queue, task_id)
    assert (info.state, info.result) == (task_pb2.TASK_STATE_COMPLETED, b"A")
