"""A kill -9 of Redis or of the broker loses nothing that was acknowledged.

Every kind of stored state is made through a real broker and acknowledged: tasks that are
pending, scheduled, waiting to retry, archived, active (leased, with its token), completed with
a retained result and a settled-lease marker, a unique lock, a paused queue and a schedule.
Then, at once (no time for Redis' once-a-second fsync), a process is killed with SIGKILL and
restarted on the same data, and the broker must answer exactly as before: every task in the same
state with every field, the same queues, counts and schedule, the unique lock still refusing,
the active lease still held by its token.

- Redis killed: a private redis-server with the embedded configuration (AOF, ``appendfsync
  everysec``) on its own data dir, under a broker that keeps running and reconnects.
- The broker killed with its embedded Redis (``leasq serve`` without ``--redis-url``): alone
  (its Redis then shuts down by the parent-death signal), or frozen and killed together with
  its Redis (no clean shutdown anywhere); then a new broker on the same data dir.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
import redis
from broker_process import BrokerFactory, BrokerHandle
from google.protobuf.duration_pb2 import Duration
from rpc_testing import lease_request, ref, refusal, spec

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import broker_service_pb2_grpc as pb_grpc
from leasq.v1 import inspect_service_pb2 as ipb
from leasq.v1 import inspect_service_pb2_grpc as ipb_grpc
from leasq.v1 import schedule_service_pb2 as spb
from leasq.v1 import schedule_service_pb2_grpc as spb_grpc
from leasq.v1 import task_pb2
from leasq_broker.embedded_redis import find_redis_server, free_loopback_port, server_arguments

pytestmark = pytest.mark.single_redis("kills and restarts one redis-server or the embedded one")
QUEUE, PAUSED = "durable", "durable-paused"
HOUR = Duration(seconds=3600)
LONG_LEASE = Duration(seconds=600)
SCHEDULE = "durable-report"
UNIQUE = {"unique_ttl": HOUR, "unique_key": "one-at-a-time"}
CALL = 5.0  # deadline of each call


class AofRedis:
    """A redis-server with the embedded broker's configuration on a data dir of its own, on a
    loopback port that stays the same across restarts."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir
        self.port = free_loopback_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = server_arguments(self.data_dir, socket_path=None, port=self.port)
        self.process = subprocess.Popen([find_redis_server(), *args], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        give_up = time.monotonic() + 10
        try:
            while True:
                assert self.process.poll() is None, "redis-server exited at start"
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    assert time.monotonic() < give_up, "redis-server did not answer within 10s"
                    time.sleep(0.02)
        finally:
            client.close()

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(15)


@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[AofRedis]:
    server = AofRedis(tmp_path / "redis-data")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Stubs:
    broker: Any
    inspect: Any
    schedules: Any


@pytest.fixture
async def stubs_for() -> AsyncIterator[Any]:
    """``stubs_for(address)``: the three service stubs on a channel closed at teardown."""
    channels: list[grpc.aio.Channel] = []

    def open_stubs(address: str) -> Stubs:
        channel = grpc.aio.insecure_channel(address)
        channels.append(channel)
        return Stubs(pb_grpc.BrokerServiceStub(channel), ipb_grpc.InspectServiceStub(channel),
                     spb_grpc.ScheduleServiceStub(channel))  # fmt: skip

    yield open_stubs
    for channel in channels:
        await channel.close()


@dataclass
class Acknowledged:
    """What the broker acknowledged: every task, plus the lease and settle tokens to reuse."""

    task_ids: dict[str, list[str]]
    active_token: str
    completed_token: str


async def _leased(stubs: Stubs, task_id: str, **fields: Any) -> task_pb2.LeasedTask:
    """Enqueue ``task_id`` into QUEUE (otherwise empty of pending tasks) and lease it."""
    await stubs.broker.Enqueue(pb.EnqueueRequest(task=spec(queue=QUEUE, task_id=task_id,
                                                           **fields)), timeout=CALL)  # fmt: skip
    leased = await stubs.broker.Lease(lease_request(QUEUE, lease_duration=LONG_LEASE),
                                      timeout=CALL)  # fmt: skip
    assert [task.id for task in leased.tasks] == [task_id]
    return leased.tasks[0]


async def make_every_kind_of_state(stubs: Stubs) -> Acknowledged:
    """One task in each state (and the other stored things), each write acknowledged."""
    retry = await _leased(stubs, "retry", payload=b"r", headers={"tenant": "acme"})
    await stubs.broker.Nack(pb.NackRequest(worker_id="w1", items=[pb.NackItem(
        lease=ref(retry), action=pb.NACK_ACTION_RETRY, error="boom", error_type="Boom",
        retry_after=HOUR)]), timeout=CALL)  # fmt: skip
    archived = await _leased(stubs, "archived", payload=b"a")
    await stubs.broker.Nack(pb.NackRequest(worker_id="w1", items=[pb.NackItem(
        lease=ref(archived), action=pb.NACK_ACTION_ARCHIVE, error="hopeless")]),
        timeout=CALL)  # fmt: skip
    completed = await _leased(stubs, "completed", retention=HOUR)
    await stubs.broker.Ack(pb.AckRequest(worker_id="w1", items=[pb.AckItem(
        lease=ref(completed), result=b"kept")]), timeout=CALL)  # fmt: skip
    active = await _leased(stubs, "active", payload=b"running")
    for task_id, fields in (("pending", {"payload": b"p", "max_retry": 3}),
                            ("scheduled", {"process_in": HOUR}),
                            ("unique", UNIQUE)):  # fmt: skip
        task = spec(queue=QUEUE, task_id=task_id, **fields)
        await stubs.broker.Enqueue(pb.EnqueueRequest(task=task), timeout=CALL)
    await stubs.broker.Enqueue(pb.EnqueueRequest(task=spec(queue=PAUSED, task_id="held")),
                               timeout=CALL)  # fmt: skip
    await stubs.inspect.PauseQueue(ipb.PauseQueueRequest(queue=PAUSED), timeout=CALL)
    schedule = spb.Schedule(name=SCHEDULE, spec="0 9 1 * *", time_zone="Europe/Berlin",
                            template=spb.TaskTemplate(type="report:monthly", queue=QUEUE))
    await stubs.schedules.UpsertSchedule(spb.UpsertScheduleRequest(schedule=schedule),
                                         timeout=CALL)  # fmt: skip
    ids = {QUEUE: ["pending", "scheduled", "retry", "archived", "active", "completed", "unique"],
           PAUSED: ["held"]}  # fmt: skip
    return Acknowledged(ids, active.lease_token, completed.lease_token)


async def _read(method: Any, request: Any) -> Any:
    """A read, retried on UNAVAILABLE as the contract says (the broker reconnecting to a
    restarted Redis answers UNAVAILABLE until it has), for up to 10 s."""
    give_up = time.monotonic() + 10
    while True:
        try:
            return await method(request, timeout=CALL, wait_for_ready=True)
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return f"missing: {error.details()}"
            if error.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > give_up:
                raise
            await asyncio.sleep(0.05)


async def observe(stubs: Stubs, acked: Acknowledged) -> dict[str, Any]:
    """Everything the broker tells about the acknowledged state, as comparable values."""
    seen: dict[str, Any] = {}
    for queue, ids in acked.task_ids.items():
        for task_id in ids:
            request = ipb.GetTaskRequest(queue=queue, task_id=task_id)
            answer = await _read(stubs.inspect.GetTask, request)
            seen[f"task {queue}/{task_id}"] = getattr(answer, "task", answer)
        request = ipb.GetQueueStatsRequest(queue=queue)
        stats = (await _read(stubs.inspect.GetQueueStats, request)).stats
        stats.ClearField("latency")  # the age of the oldest pending task grows by itself
        # An estimate from MEMORY USAGE, which depends on how Redis laid the keys out: a
        # reload from the AOF packs them tighter than the writes that grew them.
        stats.ClearField("memory_bytes")
        seen[f"stats {queue}"] = stats
    seen["queues"] = await _read(stubs.inspect.ListQueues, ipb.ListQueuesRequest())
    request = spb.GetScheduleRequest(name=SCHEDULE)
    answer = await _read(stubs.schedules.GetSchedule, request)
    seen["schedule"] = getattr(answer, "schedule", answer)
    return seen


async def check_still_enforced(stubs: Stubs, acked: Acknowledged) -> None:
    """The stored locks and tokens still act: unique lock, task ids, both lease tokens."""
    duplicate = await refusal(stubs.broker.Enqueue(
        pb.EnqueueRequest(task=spec(queue=QUEUE, **UNIQUE)), timeout=CALL))  # fmt: skip
    assert (duplicate.code, duplicate.reason) == (grpc.StatusCode.ALREADY_EXISTS,
                                                  "DUPLICATE_TASK")  # fmt: skip
    conflict = await refusal(stubs.broker.Enqueue(
        pb.EnqueueRequest(task=spec(queue=QUEUE, task_id="completed")), timeout=CALL))
    assert conflict.reason == "TASK_ID_CONFLICT"
    lease = pb.LeaseRef(queue=QUEUE, task_id="completed", lease_token=acked.completed_token)
    again = await stubs.broker.Ack(pb.AckRequest(worker_id="w1", items=[pb.AckItem(lease=lease)]),
                                   timeout=CALL)  # fmt: skip
    assert again.results[0].already_settled
    # The paused queue gives nothing; the active lease is still its token's to settle.
    assert not (await stubs.broker.Lease(lease_request(PAUSED), timeout=CALL)).tasks
    lease = pb.LeaseRef(queue=QUEUE, task_id="active", lease_token=acked.active_token)
    beat = await stubs.broker.Heartbeat(pb.HeartbeatRequest(worker_id="w2", leases=[lease]),
                                        timeout=CALL)  # fmt: skip
    assert beat.leases[0].status == pb.LEASE_STATUS_EXTENDED
    await stubs.broker.Ack(pb.AckRequest(worker_id="w2", items=[pb.AckItem(lease=lease)]),
                           timeout=CALL)  # fmt: skip


def _differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return [f"{name}:\n--- before\n{before[name]}--- after\n{after.get(name)}"
            for name in before if after.get(name) != before[name]]  # fmt: skip


async def test_a_kill_9_of_redis_loses_no_acknowledged_state(
    broker_factory: BrokerFactory, aof_redis: AofRedis, stubs_for: Any
) -> None:
    broker = broker_factory(redis_url=aof_redis.url)
    stubs = stubs_for(broker.address)
    acked = await make_every_kind_of_state(stubs)
    before = await observe(stubs, acked)

    aof_redis.kill()
    aof_redis.start()

    after = await observe(stubs, acked)  # the same broker, reconnected
    assert not _differences(before, after), "\n".join(_differences(before, after))
    await check_still_enforced(stubs, acked)


def _kill_broker_only(broker: BrokerHandle) -> None:
    broker.kill()  # its Redis gets SIGTERM from the parent-death signal


def _kill_broker_and_its_redis(broker: BrokerHandle) -> None:
    assert broker.process is not None and broker.data_dir is not None
    redis_pid = int((broker.data_dir / "redis.pid").read_text())
    broker.process.send_signal(signal.SIGSTOP)  # so that it cannot see its Redis die
    os.kill(redis_pid, signal.SIGKILL)
    broker.kill()
    give_up = time.monotonic() + 10
    while Path(f"/proc/{redis_pid}").exists() and _state(redis_pid) != "Z":
        assert time.monotonic() < give_up, "the killed redis-server did not exit"
        time.sleep(0.02)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "gone"


@pytest.mark.parametrize("kill", [_kill_broker_only, _kill_broker_and_its_redis],
                         ids=["broker", "broker and its redis"])  # fmt: skip
async def test_a_kill_9_of_the_broker_with_its_embedded_redis_loses_no_acknowledged_state(
    broker_factory: BrokerFactory, tmp_path: Path, stubs_for: Any, kill: Any
) -> None:
    broker = broker_factory(redis_url=None, data_dir=tmp_path / "data")
    stubs = stubs_for(broker.address)
    acked = await make_every_kind_of_state(stubs)
    before = await observe(stubs, acked)

    kill(broker)
    broker.start()  # a new broker on the same data dir (and port)

    stubs = stubs_for(broker.address)
    after = await observe(stubs, acked)
    assert not _differences(before, after), "\n".join(_differences(before, after))
    await check_still_enforced(stubs, acked)
