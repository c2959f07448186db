"""A broker on Redis Cluster: queues on every primary drain with each task leased exactly once,
and a primary failover during a drain loses no acknowledged task while the broker serves on."""

from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass, field

import grpc.aio
import redis
from broker_process import BrokerFactory
from cluster_testing import NODE_TIMEOUT_MS, RedisClusterGroup
from google.protobuf.duration_pb2 import Duration
from rpc_testing import lease_request, ref, spec
from waiting import SETTLE, eventually, within

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import broker_service_pb2_grpc as pb_grpc
from leasq.v1 import inspect_service_pb2 as ipb
from leasq.v1 import inspect_service_pb2_grpc as ipb_grpc
from leasq_broker.keys import Keys

QUEUES = [f"drain-{n}" for n in range(100)]
TASKS_PER_QUEUE = 20
LEASERS = 4
CALL_TIMEOUT_S = 10.0
# Enqueue calls that must be confirmed before the failover, so that it lands mid-load.
BEFORE_FAILOVER = 40
# After a primary is killed its replica is promoted once the others mark it failing
# (cluster-node-timeout) and vote; the broker must serve its queues again a little later.
KILL_BOUND_S = NODE_TIMEOUT_MS / 1000 * 3 + SETTLE


def primaries_of(cluster: RedisClusterGroup, queues: list[str]) -> set[int]:
    """The ports of the primaries that own the queues' slots now."""
    keys = Keys(cluster=True)
    with cluster.client(cluster.ports[0]) as node:
        ranges = node.execute_command("CLUSTER", "SLOTS")
    owners = set()
    for queue in queues:
        slot = keys.queue_slot(queue)
        owners |= {int(entry[2][1]) for entry in ranges if entry[0] <= slot <= entry[1]}
    return owners


@dataclass
class Drain:
    """Leasers over every queue that ack what they lease and count each id they were given."""

    stub: pb_grpc.BrokerServiceStub
    queues: list[str]
    leased: collections.Counter[str] = field(default_factory=collections.Counter)
    acked: set[str] = field(default_factory=set)
    failed_calls: int = 0
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, worker: str) -> None:
        request = lease_request(*self.queues, worker_id=worker, max_tasks=50,
                                wait=Duration(nanos=200_000_000))
        while not self.stop.is_set():
            try:
                reply = await self.stub.Lease(request, timeout=CALL_TIMEOUT_S)
                self.leased.update(task.id for task in reply.tasks)
                if reply.tasks:
                    answer = await self.stub.Ack(pb.AckRequest(worker_id=worker, items=[
                        pb.AckItem(lease=ref(task)) for task in reply.tasks]),
                        timeout=CALL_TIMEOUT_S)  # fmt: skip
                    self.acked.update(task.id for task, result in
                                      zip(reply.tasks, answer.results, strict=True)
                                      if not result.HasField("error"))
            except grpc.aio.AioRpcError:
                self.failed_calls += 1
                await asyncio.sleep(0.05)  # pacing of retries while a node fails over


async def _enqueue_all(stub: pb_grpc.BrokerServiceStub, ids: list[tuple[str, str]]) -> None:
    for first in range(0, len(ids), 500):
        reply = await stub.EnqueueBatch(pb.EnqueueBatchRequest(tasks=[
            spec(queue=queue, task_id=task_id) for queue, task_id in ids[first:first + 500]]),
            timeout=CALL_TIMEOUT_S)  # fmt: skip
        assert reply.enqueued_count == len(ids[first:first + 500])


async def test_a_hundred_queues_on_every_primary_drain_with_each_task_leased_once(
    redis_cluster: RedisClusterGroup, broker_factory: BrokerFactory
) -> None:
    assert primaries_of(redis_cluster, QUEUES) == set(redis_cluster.primaries())
    broker = broker_factory(redis_url=redis_cluster.url)
    ids = [(q, f"{q}-{n}") for n in range(TASKS_PER_QUEUE) for q in QUEUES]
    async with grpc.aio.insecure_channel(broker.address) as channel:
        stub = pb_grpc.BrokerServiceStub(channel)
        await _enqueue_all(stub, ids)
        drain = Drain(stub, QUEUES)
        runners = [asyncio.create_task(drain.run(f"w{n}")) for n in range(LEASERS)]
        try:
            await eventually(lambda: _true(len(drain.acked) == len(ids)), 60,
                             f"all {len(ids)} tasks acked")
        finally:
            drain.stop.set()
            await within(CALL_TIMEOUT_S + SETTLE, asyncio.gather(*runners), "the drain stopped")
    assert drain.failed_calls == 0
    assert set(drain.leased) == {task_id for _, task_id in ids}
    assert max(drain.leased.values()) == 1  # no task leased twice


@dataclass
class Producer:
    """Enqueues one task per call to a queue after another; counts what the broker confirmed."""

    stub: pb_grpc.BrokerServiceStub
    queues: list[str]
    confirmed: list[str] = field(default_factory=list)
    # When each confirmed enqueue returned (monotonic), and to which queue.
    confirmed_at: list[tuple[float, str]] = field(default_factory=list)
    refused: int = 0
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        number = 0
        while not self.stop.is_set():
            number += 1
            task = spec(queue=self.queues[number % len(self.queues)], task_id=f"f{number}")
            try:
                await self.stub.Enqueue(pb.EnqueueRequest(task=task), timeout=CALL_TIMEOUT_S)
            except grpc.aio.AioRpcError:
                self.refused += 1
                await asyncio.sleep(0.05)
                continue
            self.confirmed.append(task.task_id)
            self.confirmed_at.append((time.monotonic(), task.queue))


async def test_a_primary_failover_during_a_drain_loses_no_acknowledged_task(
    fresh_cluster: RedisClusterGroup, broker_factory: BrokerFactory
) -> None:
    redis_cluster = fresh_cluster
    queues = QUEUES[:30]
    broker = broker_factory(redis_url=redis_cluster.url)
    process = broker.process
    async with grpc.aio.insecure_channel(broker.address) as channel:
        stub = pb_grpc.BrokerServiceStub(channel)
        producer, drain, runners = await _under_load(stub, queues)
        try:
            victim = sorted(primaries_of(redis_cluster, queues))[0]
            started = time.monotonic()
            await asyncio.to_thread(redis_cluster.failover, victim)
            swapped = time.monotonic() - started
            before = len(drain.acked)
            await eventually(lambda: _true(len(drain.acked) > before + 100), 30,
                             "the drain acked tasks again after the failover")
        finally:
            producer.stop.set()
            await within(CALL_TIMEOUT_S + SETTLE, runners[0], "the producer stopped")
            # Every confirmed task is drained: none was lost in the failover.
            try:
                await eventually(lambda: _true(set(producer.confirmed) <= drain.acked), 30,
                                 "every confirmed task leased and acked")
            finally:
                drain.stop.set()
                await within(CALL_TIMEOUT_S + SETTLE, asyncio.gather(*runners[1:]),
                             "the drain stopped")
    print(f"\ncluster failover (CLUSTER FAILOVER): roles swapped in {swapped:.2f}s, confirmed "
          f"{len(producer.confirmed)}, refused {producer.refused}, failed drain calls "
          f"{drain.failed_calls}, lost 0")
    assert broker.process is process and broker.running
    with redis.Redis(port=victim) as old_primary:
        assert old_primary.info("replication")["role"] == "slave"


async def test_a_killed_primary_is_replaced_and_loses_at_most_what_was_not_yet_replicated(
    fresh_cluster: RedisClusterGroup, broker_factory: BrokerFactory
) -> None:
    cluster, queues = fresh_cluster, QUEUES[:30]
    broker = broker_factory(redis_url=cluster.url)
    # Until the replica takes over, calls on the dead primary's slots fail UNAVAILABLE.
    broker.expect_log("redis refused a command", "The cluster is down", "redis unreachable")
    process = broker.process
    victim = sorted(primaries_of(cluster, queues))[0]
    replica = cluster.replicas_of(victim)[0]
    on_victim = {q for q in queues if primaries_of(cluster, [q]) == {victim}}
    async with grpc.aio.insecure_channel(broker.address) as channel:
        stub = pb_grpc.BrokerServiceStub(channel)
        producer, drain, runners = await _under_load(stub, queues)
        try:
            before, killed_at = len(producer.confirmed), time.monotonic()
            cluster.kill(victim)
            await eventually(lambda: _true(_is_primary(cluster, replica)), KILL_BOUND_S,
                             "the replica took over the killed primary's slots")
            await eventually(lambda: _true(any(
                at > killed_at and queue in on_victim for at, queue in producer.confirmed_at)),
                KILL_BOUND_S, "an enqueue on the failed primary's queues confirmed again")
        finally:
            producer.stop.set()
            await within(CALL_TIMEOUT_S + SETTLE, runners[0], "the producer stopped")
        outage = min(at for at, queue in producer.confirmed_at
                     if at > killed_at and queue in on_victim) - killed_at
        after = set(producer.confirmed[before:])
        try:
            await eventually(lambda: _true(after <= drain.acked), 30,
                             "every enqueue confirmed after the kill leased and acked")
            inspect = ipb_grpc.InspectServiceStub(channel)
            await eventually(lambda: _all_settled(inspect, queues), 30, "every queue drained")
        finally:
            drain.stop.set()
            await within(CALL_TIMEOUT_S + SETTLE, asyncio.gather(*runners[1:]),
                         "the drain stopped")
    lost = set(producer.confirmed) - drain.acked
    print(f"\ncluster primary killed (SIGKILL, cluster-node-timeout {NODE_TIMEOUT_MS} ms): its "
          f"queues served again after {outage:.2f}s, confirmed {len(producer.confirmed)} "
          f"({before} before the kill), lost {len(lost)}, refused {producer.refused}")
    assert broker.process is process and broker.running
    # Only enqueues confirmed before the kill can be lost (not yet on the replica).
    assert lost <= set(producer.confirmed[:before])


async def _under_load(
    stub: pb_grpc.BrokerServiceStub, queues: list[str]
) -> tuple[Producer, Drain, list[asyncio.Task[None]]]:
    """A producer and two leasers running over ``queues``, once the drain acked some tasks
    (so that what the test does next lands mid-load); the producer's task comes first."""
    producer, drain = Producer(stub, queues), Drain(stub, queues)
    runners = [asyncio.create_task(producer.run()),
               *(asyncio.create_task(drain.run(f"w{n}")) for n in range(2))]
    try:
        await eventually(lambda: _true(len(drain.acked) >= BEFORE_FAILOVER), SETTLE * 4,
                         "the drain acked tasks")
    except BaseException:
        producer.stop.set()
        drain.stop.set()
        await asyncio.gather(*runners, return_exceptions=True)
        raise
    return producer, drain, runners


def _is_primary(cluster: RedisClusterGroup, port: int) -> bool:
    with cluster.client(port) as node:
        return bool(node.info("replication")["role"] == "master")


async def _all_settled(inspect: ipb_grpc.InspectServiceStub, queues: list[str]) -> bool:
    """Whether no queue holds a task still to run (pending, scheduled, retry or active)."""
    for queue in queues:
        stats = (await inspect.GetQueueStats(ipb.GetQueueStatsRequest(queue=queue),
                                             timeout=CALL_TIMEOUT_S)).stats
        if stats.pending or stats.scheduled or stats.retry or stats.active:
            return False
    return True


async def _true(value: bool) -> bool:
    return value
