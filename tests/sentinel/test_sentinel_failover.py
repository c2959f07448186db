"""A broker on ``redis+sentinel://`` serves, follows a failover of its primary without a restart,
and with ``--redis-min-replicas-ack`` loses no confirmed enqueue in that failover."""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field

import grpc
import grpc.aio
import redis
from broker_process import BrokerFactory, BrokerHandle
from google.protobuf.duration_pb2 import Duration
from rpc_testing import lease_request, ref, refusal, spec
from sentinel_testing import DOWN_AFTER_MS, FAILOVER_TIMEOUT_MS, SentinelGroup
from waiting import MARGIN, SETTLE, eventually, within

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import broker_service_pb2_grpc
from leasq_broker.keys import Keys

QUEUE = "sentinel"
CALL_TIMEOUT_S = 5.0
# Confirmed enqueues before the primary is killed, so that the kill lands mid-load.
BEFORE_KILL = 200
# Sentinels agree the primary is down after DOWN_AFTER_MS, then elect a leader and promote the
# replica (about a second on loopback); a failed election is tried again after twice the
# failover timeout. The broker must serve again within that plus a few seconds.
RECOVERY_BOUND_S = (DOWN_AFTER_MS + 2 * FAILOVER_TIMEOUT_MS) / 1000 + 5 * MARGIN


@dataclass
class Load:
    """Enqueues (each confirmed id counted) and a drain (lease + ack) run until stopped."""

    channel: grpc.aio.Channel
    confirmed: list[str] = field(default_factory=list)
    confirmed_at: list[float] = field(default_factory=list)
    refused: int = 0
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    runners: list[asyncio.Task[None]] = field(default_factory=list)
    # Confirmed enqueues when the primary was killed, and when.
    before: int = 0
    killed_at: float = 0.0

    @property
    def stub(self) -> broker_service_pb2_grpc.BrokerServiceStub:
        return broker_service_pb2_grpc.BrokerServiceStub(self.channel)

    def start(self) -> None:
        self.runners = [asyncio.create_task(self.enqueue()), asyncio.create_task(self.drain())]

    async def finish(self) -> None:
        self.stop.set()
        await within(2 * CALL_TIMEOUT_S + SETTLE, asyncio.gather(*self.runners),
                     "the load stopped")
        await self.channel.close()

    async def enqueue(self) -> None:
        number = 0
        while not self.stop.is_set():
            number += 1
            # A retention keeps acked tasks, so every confirmed id must still exist later.
            task = spec(queue=QUEUE, task_id=f"t{number}", retention=Duration(seconds=3600))
            try:
                await self.stub.Enqueue(pb.EnqueueRequest(task=task), timeout=CALL_TIMEOUT_S)
            except grpc.aio.AioRpcError:
                self.refused += 1
                await asyncio.sleep(0.05)  # pacing of retries while Redis is away
                continue
            self.confirmed.append(task.task_id)
            self.confirmed_at.append(time.monotonic())

    async def drain(self) -> None:
        while not self.stop.is_set():
            try:
                leased = await self.stub.Lease(lease_request(QUEUE, max_tasks=10),
                                               timeout=CALL_TIMEOUT_S)  # fmt: skip
                if leased.tasks:
                    await self.stub.Ack(pb.AckRequest(worker_id="w1", items=[
                        pb.AckItem(lease=ref(task)) for task in leased.tasks]),
                        timeout=CALL_TIMEOUT_S)  # fmt: skip
                else:
                    await asyncio.sleep(0.01)
            except grpc.aio.AioRpcError:
                await asyncio.sleep(0.05)


def _missing(group: SentinelGroup, port: int, ids: list[str]) -> list[str]:
    """The ids whose task record the Redis on ``port`` does not hold."""
    keys = Keys()
    with redis.Redis(port=port, socket_timeout=10) as client:
        found = client.hmget(keys.tasks(QUEUE), ids) if ids else []
    return [task_id for task_id, there in zip(ids, found, strict=True) if not there]


async def _fail_over_under_load(group: SentinelGroup, broker: BrokerHandle) -> tuple[Load, int]:
    """Run the load, SIGKILL the primary mid-load, wait for the sentinels' failover; the load
    (still running) and the new primary's port."""
    load = Load(grpc.aio.insecure_channel(broker.address))
    load.start()
    try:
        await eventually(lambda: _true(len(load.confirmed) >= BEFORE_KILL), SETTLE,
                         "the load confirmed enqueues")  # fmt: skip
        old = group.primary_port()
        group.kill_primary()
        load.killed_at, load.before = time.monotonic(), len(load.confirmed)
        new = await asyncio.to_thread(group.wait_for_failover, old, RECOVERY_BOUND_S)
    except BaseException:
        await load.finish()
        raise
    return load, new


async def _true(value: bool) -> bool:
    return value


async def test_a_broker_on_a_sentinel_url_enqueues_leases_and_acks(
    sentinel_group: SentinelGroup, broker_factory: BrokerFactory
) -> None:
    broker = broker_factory(redis_url=sentinel_group.url)
    assert "***" not in sentinel_group.url
    async with grpc.aio.insecure_channel(broker.address) as channel:
        stub = broker_service_pb2_grpc.BrokerServiceStub(channel)
        await stub.Enqueue(pb.EnqueueRequest(task=spec(queue=QUEUE, task_id="one")))
        leased = await stub.Lease(lease_request(QUEUE))
        assert [task.id for task in leased.tasks] == ["one"]
        acked = await stub.Ack(pb.AckRequest(worker_id="w1",
                                             items=[pb.AckItem(lease=ref(leased.tasks[0]))]))
        assert not acked.results[0].HasField("error")
    with sentinel_group.client("primary") as primary:
        assert not primary.hexists(Keys().tasks(QUEUE), "one")  # acked: gone from the primary


async def test_after_the_primary_is_killed_the_broker_serves_again_without_a_restart(
    sentinel_group: SentinelGroup, broker_factory: BrokerFactory
) -> None:
    broker = broker_factory(redis_url=sentinel_group.url)
    process = broker.process
    load, new_port = await _fail_over_under_load(sentinel_group, broker)
    try:
        await eventually(lambda: _true(len(load.confirmed) > load.before + 50),
                         RECOVERY_BOUND_S, "enqueues confirmed again after the failover")
    finally:
        await load.finish()
    # The longest gap between two confirmed enqueues around the kill: the outage clients saw.
    times = [load.killed_at, *load.confirmed_at[load.before:]]
    outage = max(b - a for a, b in itertools.pairwise(times))
    lost = _missing(sentinel_group, new_port, load.confirmed[: load.before])
    print(f"\nsentinel failover without WAIT: outage {outage:.2f}s, confirmed before the kill "
          f"{load.before}, lost {len(lost)}, refused during the failover {load.refused}")
    assert broker.process is process and broker.running
    assert outage < RECOVERY_BOUND_S
    # Long-poll wake-ups: the notifier is subscribed on the new primary.
    with redis.Redis(port=new_port) as primary:
        channel = Keys().notify_channel()
        await eventually(lambda: _true(dict(primary.pubsub_numsub(channel))[channel.encode()]
                                       == 1), RECOVERY_BOUND_S,
                         "the notifier subscribed on the new primary")  # fmt: skip


async def test_with_replica_acks_no_confirmed_enqueue_is_lost_in_a_failover(
    sentinel_group: SentinelGroup, broker_factory: BrokerFactory
) -> None:
    broker = broker_factory(redis_url=sentinel_group.url, redis_min_replicas_ack=1,
                            redis_min_replicas_timeout=2000)  # fmt: skip
    load, new_port = await _fail_over_under_load(sentinel_group, broker)
    await load.finish()
    lost = _missing(sentinel_group, new_port, load.confirmed)
    print(f"\nsentinel failover with --redis-min-replicas-ack 1: confirmed {len(load.confirmed)} "
          f"(before the kill {load.before}), lost {len(lost)}, refused {load.refused}")
    assert lost == []


async def test_with_replica_acks_a_confirmed_batch_is_already_on_the_replica(
    sentinel_group: SentinelGroup, broker_factory: BrokerFactory
) -> None:
    broker = broker_factory(redis_url=sentinel_group.url, redis_min_replicas_ack=1)
    async with grpc.aio.insecure_channel(broker.address) as channel:
        stub = broker_service_pb2_grpc.BrokerServiceStub(channel)
        # Two queues: the batch is one MULTI/EXEC, followed by WAIT on the same connection.
        tasks = [spec(queue=q, task_id=f"{q}-{i}") for q in ("a", "b") for i in range(20)]
        reply = await stub.EnqueueBatch(pb.EnqueueBatchRequest(tasks=tasks))
        assert all(not item.HasField("error") for item in reply.results)
        await stub.Enqueue(pb.EnqueueRequest(task=spec(queue="a", task_id="single")))
    keys = Keys()
    with sentinel_group.client("replica") as replica:
        for task in [*tasks, spec(queue="a", task_id="single")]:
            assert replica.hexists(keys.tasks(task.queue), task.task_id), task.task_id


async def test_with_too_few_replicas_a_change_fails_unavailable_saying_it_may_survive(
    broker_factory: BrokerFactory,
) -> None:
    broker = broker_factory(redis_min_replicas_ack=1, redis_min_replicas_timeout=50)
    async with grpc.aio.insecure_channel(broker.address) as channel:
        stub = broker_service_pb2_grpc.BrokerServiceStub(channel)
        refused = await refusal(stub.Enqueue(pb.EnqueueRequest(task=spec(task_id="x"))))
    assert refused.code == grpc.StatusCode.UNAVAILABLE
    assert refused.reason == "REPLICATION_UNCONFIRMED"
    assert "may or may not survive a failover" in refused.message
