"""Three broker replicas on one Redis flush the same groups concurrently, and a broker killed
with SIGKILL while flushing: every member ends up in exactly one flushed task."""

from __future__ import annotations

import asyncio
from collections import Counter

import grpc
from broker_process import BrokerFactory, BrokerHandle
from google.protobuf.duration_pb2 import Duration
from redis.asyncio import Redis
from rpc_testing import lease_request, ref, spec

from leasq.v1 import broker_service_pb2 as bpb
from leasq.v1 import inspect_service_pb2 as ipb
from leasq.v1.broker_service_pb2_grpc import BrokerServiceStub
from leasq.v1.inspect_service_pb2_grpc import InspectServiceStub
from leasq_broker.keys import Keys

QUEUE = "grouped"
MEMBERS = 10_000
GROUPS = 100
BATCH = 500


def member(n: int, groups: int) -> object:
    return spec("t:digest", queue=QUEUE, task_id=f"m{n}", group=f"g{n % groups}")


async def configure(channel: grpc.aio.Channel, grace_ms: int) -> None:
    await InspectServiceStub(channel).UpdateQueueSettings(ipb.UpdateQueueSettingsRequest(
        queue=QUEUE, settings=ipb.QueueSettings(groups=ipb.GroupSettings(
            grace_period=Duration(nanos=grace_ms * 1_000_000), max_delay=Duration(seconds=2),
            max_size=10_000))))


async def drain(channels: list[grpc.aio.Channel], members: int) -> Counter[str]:
    """Lease and ack flushed tasks through every channel until ``members`` members were seen;
    how often each member was seen."""
    seen: Counter[str] = Counter()
    stubs = [BrokerServiceStub(channel) for channel in channels]
    turn = 0
    while sum(seen.values()) < members:
        stub = stubs[turn % len(stubs)]
        turn += 1
        leased = await stub.Lease(lease_request(QUEUE, max_tasks=100, wait=Duration(seconds=5)))
        assert leased.tasks, f"nothing flushed within 5 s; {sum(seen.values())} members seen"
        for task in leased.tasks:
            seen.update(m.id for m in task.members)
        await stub.Ack(bpb.AckRequest(worker_id="w1", items=[
            bpb.AckItem(lease=ref(task)) for task in leased.tasks]))
    return seen


async def left_in_groups(redis: Redis) -> int:
    return int(await redis.get(Keys().aggregating(QUEUE)) or 0)


async def test_three_replicas_flushing_the_same_groups_deliver_each_member_exactly_once(
    broker_factory: BrokerFactory, redis_client: Redis,
) -> None:
    replicas = [broker_factory() for _ in range(3)]
    channels = [grpc.aio.insecure_channel(r.address) for r in replicas]
    try:
        await configure(channels[0], grace_ms=300)
        batches = [[member(n, GROUPS) for n in range(start, start + BATCH)]
                   for start in range(0, MEMBERS, BATCH)]
        await asyncio.gather(*(
            BrokerServiceStub(channels[i % 3]).EnqueueBatch(bpb.EnqueueBatchRequest(tasks=b))
            for i, b in enumerate(batches)))
        seen = await drain(channels, MEMBERS)
    finally:
        for channel in channels:
            await channel.close()
    assert len(seen) == MEMBERS and set(seen.values()) == {1}
    assert await left_in_groups(redis_client) == 0


async def test_a_broker_killed_while_flushing_loses_and_duplicates_no_member(
    broker_factory: BrokerFactory, redis_client: Redis,
) -> None:
    first: BrokerHandle = broker_factory()
    groups = 1000
    async with grpc.aio.insecure_channel(first.address) as channel:
        await configure(channel, grace_ms=500)
        stub = BrokerServiceStub(channel)
        for start in range(0, MEMBERS, 1000):
            await stub.EnqueueBatch(bpb.EnqueueBatchRequest(
                tasks=[member(n, groups) for n in range(start, start + 1000)]))
    due = Keys().group_due(QUEUE)
    while await redis_client.zcard(due) == groups:  # each read is a round trip: no busy spin
        pass
    first.kill()  # right after its first flushes, while it works through the rest
    waiting_at_kill = await left_in_groups(redis_client)
    second = broker_factory()
    async with grpc.aio.insecure_channel(second.address) as channel:
        seen = await drain([channel], MEMBERS)
    assert len(seen) == MEMBERS and set(seen.values()) == {1}, (
        f"{waiting_at_kill} members were still in groups at the kill")
    assert await left_in_groups(redis_client) == 0
