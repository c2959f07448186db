"""Queue latency counts from the instant the next pending task became pending, even when no
broker noticed at that instant: a lease that expired while every broker was down, a scheduled
task that fell due meanwhile. The put-back and the forward come late; the latency must not
start over at them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import grpc.aio
from broker_process import BrokerFactory
from google.protobuf.duration_pb2 import Duration
from waiting import eventually

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import broker_service_pb2_grpc as pb_grpc
from leasq_sdk import AsyncClient

# The broker's clock is Redis' (same machine): readings agree within a few ms.
CLOCKS = timedelta(milliseconds=50)
DOWN = 2.0


async def pending_again(client: AsyncClient, queue: str) -> None:
    async def pending() -> bool:
        return (await client.queue_stats(queue)).pending == 1

    await eventually(pending, 10, f"the task of {queue!r} is pending again")


async def test_latency_after_a_lease_lost_while_no_broker_ran_counts_from_its_expiry(
    broker_factory: BrokerFactory,
) -> None:
    first = broker_factory()
    async with (AsyncClient(first.address, timeout=30) as client,
                grpc.aio.insecure_channel(first.address) as channel):
        await client.enqueue("t:x", b"p", queue="lost", task_id="one")
        leased = await pb_grpc.BrokerServiceStub(channel).Lease(pb.LeaseRequest(
            worker_id="w", queues=[pb.QueueWeight(queue="lost")],
            lease_duration=Duration(seconds=1)))
        assert [t.id for t in leased.tasks] == ["one"]
    expiry = leased.tasks[0].lease_expires_at.ToDatetime(tzinfo=UTC)
    await first.stop_async()
    await asyncio.sleep(DOWN)  # the lease expires while no broker runs (the scenario itself)

    second = broker_factory()
    async with AsyncClient(second.address, timeout=30) as client:
        await pending_again(client, "lost")
        since_expiry = datetime.now(UTC) - expiry
        latency = (await client.queue_stats("lost")).latency
        assert since_expiry > timedelta(seconds=DOWN - 1)
        # Pending since the lease expired, not since the new broker put the task back.
        assert since_expiry - CLOCKS <= latency <= since_expiry + timedelta(seconds=1)
        assert (await client.get_task("lost", "one")).lease_lost_count == 1


async def test_latency_of_a_task_that_fell_due_while_no_broker_ran_counts_from_its_due_time(
    broker_factory: BrokerFactory,
) -> None:
    first = broker_factory()
    async with AsyncClient(first.address, timeout=30) as client:
        info = await client.enqueue("t:x", b"p", queue="due", task_id="later",
                                    process_in=timedelta(seconds=1))
    due = info.next_process_at
    assert due is not None
    await first.stop_async()
    await asyncio.sleep(DOWN)  # it falls due while no broker runs (the scenario itself)

    second = broker_factory()
    async with AsyncClient(second.address, timeout=30) as client:
        await pending_again(client, "due")
        since_due = datetime.now(UTC) - due
        latency = (await client.queue_stats("due")).latency
        assert since_due > timedelta(seconds=DOWN - 1)
        assert since_due - CLOCKS <= latency <= since_due + timedelta(seconds=1)
        task = await client.get_task("due", "later")
        assert task.next_process_at == due  # the pending task keeps its due time
