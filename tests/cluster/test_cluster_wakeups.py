"""Long-poll wake-ups between brokers on a Redis Cluster: an enqueue through one broker wakes
a Lease waiting on another at once, whichever node the queue lives on (the publish from the
queue's primary reaches the node each broker listens on)."""

from __future__ import annotations

import asyncio
import time

import grpc.aio
from broker_process import BrokerFactory
from cluster_testing import RedisClusterGroup, cluster_client
from google.protobuf.duration_pb2 import Duration
from rpc_testing import lease_request, spec
from waiting import MARGIN, SETTLE, eventually

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import broker_service_pb2_grpc as pb_grpc
from leasq_broker.keys import Keys

# Without a wake-up, a waiting Lease looks again after up to 5 s (leasing.MAX_IDLE_CHECK_S).
WOKEN_WITHIN_S = 1.0 + MARGIN


async def test_an_enqueue_on_one_broker_wakes_a_lease_waiting_on_another(
    redis_cluster: RedisClusterGroup, broker_factory: BrokerFactory
) -> None:
    first = broker_factory(redis_url=redis_cluster.url)
    second = broker_factory(redis_url=redis_cluster.url)
    keys = Keys(cluster=True)
    client = await cluster_client(redis_cluster)
    async with client, grpc.aio.insecure_channel(first.address) as one, \
            grpc.aio.insecure_channel(second.address) as two:
        producer, leaser = pb_grpc.BrokerServiceStub(one), pb_grpc.BrokerServiceStub(two)
        for n, queue in enumerate(["wake-a", "wake-b", "wake-c", "wake-d"]):
            waiter = asyncio.ensure_future(leaser.Lease(
                lease_request(queue, worker_id="w", wait=Duration(seconds=20)), timeout=30))
            await eventually(lambda q=queue: client.exists(keys.waiting(q)),  # type: ignore[misc]
                             SETTLE, f"the Lease on {queue} waits")
            sent = time.monotonic()
            await producer.Enqueue(pb.EnqueueRequest(task=spec(queue=queue, task_id=f"t{n}")),
                                   timeout=5)
            answer = await asyncio.wait_for(waiter, SETTLE)
            assert [task.id for task in answer.tasks] == [f"t{n}"]
            assert time.monotonic() - sent < WOKEN_WITHIN_S, queue

