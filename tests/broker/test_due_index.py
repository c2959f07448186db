"""Background work driven by the due indexes, and wake-ups of waiting Leases, on real brokers.

The wake-up tests long-poll for 20 s and require the answer before the long poll's own
re-check (``MAX_IDLE_CHECK_S``) could have found the task: only a wake-up explains it. Where a
waiter and the call that wakes it go through different brokers, the wake-up crossed replicas.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import grpc.aio
import pytest
from broker_process import BrokerFactory
from google.protobuf.duration_pb2 import Duration
from redis.asyncio import Redis
from rpc_testing import lease_request, ref, spec
from waiting import SETTLE, eventually, within

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import broker_service_pb2_grpc as pb_grpc
from leasq.v1 import inspect_service_pb2 as ipb
from leasq.v1 import inspect_service_pb2_grpc as ipb_grpc
from leasq.v1 import task_pb2
from leasq_broker.cluster_slots import is_cluster
from leasq_broker.keys import DUE_KINDS, Keys
from leasq_broker.leasing import MAX_IDLE_CHECK_S

LONG_POLL = Duration(seconds=20)
# Sooner than the long poll's own re-check: an answer within this came from a wake-up.
WOKEN_WITHIN_S = MAX_IDLE_CHECK_S * 0.9
KEYS = Keys()


def keys_of(redis: Redis) -> Keys:
    """The broker's key names on this Redis (the due indexes differ on a Redis Cluster)."""
    return Keys(cluster=is_cluster(redis))


@dataclass
class Stubs:
    broker: pb_grpc.BrokerServiceStub
    inspect: ipb_grpc.InspectServiceStub


@pytest.fixture
async def two_brokers(broker_factory: BrokerFactory) -> AsyncIterator[tuple[Stubs, Stubs]]:
    """Two broker replicas on the same Redis."""
    first, second = broker_factory(), broker_factory()
    async with grpc.aio.insecure_channel(first.address) as one, \
            grpc.aio.insecure_channel(second.address) as two:
        yield (Stubs(pb_grpc.BrokerServiceStub(one), ipb_grpc.InspectServiceStub(one)),
               Stubs(pb_grpc.BrokerServiceStub(two), ipb_grpc.InspectServiceStub(two)))


async def waiting_lease(stub: pb_grpc.BrokerServiceStub, redis: Redis, queue: str
                        ) -> asyncio.Task[pb.LeaseResponse]:
    """A long-poll Lease on ``queue``, once it is waiting (its broker marked the queue)."""
    call = asyncio.ensure_future(
        stub.Lease(lease_request(queue, worker_id="w2", wait=LONG_POLL), timeout=30))
    await eventually(lambda: redis.exists(KEYS.waiting(queue)), SETTLE, "the Lease waits")
    await asyncio.sleep(0)
    return call


async def test_a_nack_with_a_short_retry_wakes_a_lease_waiting_on_another_replica(
    two_brokers: tuple[Stubs, Stubs], redis_client: Redis,
) -> None:
    first, second = two_brokers
    await first.broker.Enqueue(pb.EnqueueRequest(task=spec(queue="q", task_id="t1")), timeout=5)
    task = (await first.broker.Lease(lease_request("q"), timeout=5)).tasks[0]
    waiter = await waiting_lease(second.broker, redis_client, "q")
    item = pb.NackItem(lease=ref(task), error="try again", retry_after=Duration(nanos=200_000_000))
    await first.broker.Nack(pb.NackRequest(worker_id="w1", items=[item]), timeout=5)
    answer = await within(WOKEN_WITHIN_S, waiter, "the waiting Lease was not woken by the retry")
    assert [t.id for t in answer.tasks] == ["t1"]
    assert answer.tasks[0].retried == 1


async def test_resuming_a_queue_wakes_a_lease_waiting_on_it_on_another_replica(
    two_brokers: tuple[Stubs, Stubs], redis_client: Redis,
) -> None:
    first, second = two_brokers
    await first.broker.Enqueue(pb.EnqueueRequest(task=spec(queue="q", task_id="t1")), timeout=5)
    await first.inspect.PauseQueue(ipb.PauseQueueRequest(queue="q"), timeout=5)
    waiter = await waiting_lease(second.broker, redis_client, "q")
    await first.inspect.ResumeQueue(ipb.ResumeQueueRequest(queue="q"), timeout=5)
    answer = await within(WOKEN_WITHIN_S, waiter, "the waiting Lease was not woken by resume")
    assert [t.id for t in answer.tasks] == ["t1"]


async def test_an_expired_lease_in_one_of_2000_queues_goes_back_to_its_queue(
    broker_stub: pb_grpc.BrokerServiceStub, redis_client: Redis,
) -> None:
    names = [f"many.{n:04}" for n in range(2000)]
    for start in range(0, len(names), 1000):
        specs = [task_pb2.TaskSpec(type="t:x", queue=q, task_id="t")
                 for q in names[start : start + 1000]]
        await broker_stub.EnqueueBatch(pb.EnqueueBatchRequest(tasks=specs), timeout=10)
    lost = (await broker_stub.Lease(lease_request("many.1234", lease_duration=Duration(seconds=1)),
                                    timeout=5)).tasks[0]
    again = await broker_stub.Lease(lease_request("many.1234", worker_id="w2", wait=LONG_POLL),
                                    timeout=30)
    assert [(t.id, t.queue) for t in again.tasks] == [("t", "many.1234")]
    assert again.tasks[0].lease_token != lost.lease_token
    assert await redis_client.llen(KEYS.pending("many.0000")) == 1


async def test_a_heartbeat_that_shortens_a_lease_makes_it_expire_at_the_shorter_instant(
    broker_stub: pb_grpc.BrokerServiceStub,
) -> None:
    await broker_stub.Enqueue(pb.EnqueueRequest(task=spec(queue="q", task_id="t1")), timeout=5)
    held = (await broker_stub.Lease(lease_request("q", lease_duration=Duration(seconds=60)),
                                    timeout=5)).tasks[0]
    await broker_stub.Heartbeat(pb.HeartbeatRequest(
        worker_id="w1", leases=[ref(held)], lease_duration=Duration(seconds=1)), timeout=5)
    # Within the 20 s long poll, long before the first lease's 60 s: the shorter one expired.
    again = await broker_stub.Lease(lease_request("q", worker_id="w2", wait=LONG_POLL),
                                    timeout=30)
    assert [t.id for t in again.tasks] == ["t1"]


async def test_leases_granted_before_the_due_indexes_existed_are_still_reclaimed(
    broker_factory: BrokerFactory, redis_client: Redis,
) -> None:
    old = broker_factory()
    async with grpc.aio.insecure_channel(old.address) as channel:
        stub = pb_grpc.BrokerServiceStub(channel)
        await stub.Enqueue(pb.EnqueueRequest(task=spec(queue="q", task_id="t1")), timeout=5)
        await stub.Lease(lease_request("q", lease_duration=Duration(seconds=1)), timeout=5)
    await old.stop_async()
    # What data written by a version without the indexes looks like.
    keys = keys_of(redis_client)
    # One index per kind (per slot on a Redis Cluster: delete them one by one there).
    for key in (keys.due_version(), *(keys.due_index(kind, "q") for kind in DUE_KINDS)):
        await redis_client.delete(key)
    new = broker_factory()
    async with grpc.aio.insecure_channel(new.address) as channel:
        stub = pb_grpc.BrokerServiceStub(channel)
        again = await stub.Lease(lease_request("q", worker_id="w2", wait=LONG_POLL), timeout=30)
    assert [t.id for t in again.tasks] == ["t1"]
    assert await redis_client.get(KEYS.due_version()) == b"1"


async def test_a_scheduled_task_of_a_queue_nobody_leases_becomes_pending_and_leaves_the_index(
    broker_stub: pb_grpc.BrokerServiceStub, redis_client: Redis,
) -> None:
    task = spec(queue="later", task_id="t1", process_in=Duration(nanos=300_000_000))
    await broker_stub.Enqueue(pb.EnqueueRequest(task=task), timeout=5)
    due = keys_of(redis_client).due_forward("later")
    assert await redis_client.zscore(due, "later") is not None
    await eventually(lambda: redis_client.llen(KEYS.pending("later")), SETTLE,
                     "the scheduled task became pending")

    async def unfiled() -> bool:
        return await redis_client.zscore(due, "later") is None

    await eventually(unfiled, SETTLE, "the queue left the forward index once nothing was due")
