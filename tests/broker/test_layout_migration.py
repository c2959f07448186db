"""A broker started on data of storage layout 1 moves it to layout 2 and serves it as before.

Layout 1 kept a hash per task, a string per unique lock and a list per concurrency key; the
data is written here with raw Redis commands, as a broker of that layout left it.
"""

from __future__ import annotations

import hashlib
import time

import grpc
import redis.asyncio
from broker_process import BrokerFactory
from google.protobuf.duration_pb2 import Duration
from rpc_testing import lease_request, ref, refusal, spec

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import broker_service_pb2_grpc as pb_grpc
from leasq.v1 import task_pb2
from leasq_broker.keys import Keys
from leasq_broker.migrations import LAYOUT_VERSION

PREFIX = "mig"
Q = "mq"
OLD = f"{PREFIX}:{{{Q}}}"
UNIQUE_KEY = "once"
DIGEST = "k:" + hashlib.sha256(UNIQUE_KEY.encode()).hexdigest()


def _envelope(task_id: str) -> bytes:
    return task_pb2.LeasedTask(id=task_id, queue=Q, type="t:x", payload=task_id.encode(),
                               max_retry=3).SerializeToString()


async def _write_layout_1(client: redis.asyncio.Redis, now_ms: int) -> None:
    """A unique task "u" (its lock held for a minute), and two tasks "k1" then "k2" of the
    concurrency key "user" (limit 1: one at a time, in order), all PENDING."""
    k = Keys(PREFIX)
    pipe = client.pipeline(transaction=False)
    pipe.sadd(k.queues(), Q)
    pipe.hset(f"{OLD}:t:u", mapping={"b": _envelope("u"), "mr": "3", "na": now_ms,
                                     "s": "pending", "uk": f"{OLD}:u:{DIGEST}", "ut": "60000"})
    pipe.set(f"{OLD}:u:{DIGEST}", "u", px=60_000)
    pipe.lpush(k.pending(Q), "u")
    for task_id in ("k1", "k2"):
        pipe.hset(f"{OLD}:t:{task_id}", mapping={"b": _envelope(task_id), "mr": "3",
                                                 "na": now_ms, "s": "pending", "ck": "user"})
    pipe.lpush(f"{OLD}:kp:user", "k1", "k2")  # the oldest at the right end
    pipe.rpush(k.key_ring(Q), "user")
    pipe.hset(k.flow(Q), "kn", 2)
    pipe.hset(k.queue_settings(Q), "kx", 1)
    await pipe.execute()


async def test_a_broker_moves_layout_1_data_and_serves_it(
    broker_factory: BrokerFactory, redis_client: redis.asyncio.Redis
) -> None:
    await _write_layout_1(redis_client, int(time.time() * 1000))
    handle = broker_factory(key_prefix=PREFIX)
    k = Keys(PREFIX)
    assert (await redis_client.get(k.layout_version())) == LAYOUT_VERSION.encode()
    assert await redis_client.keys(f"{OLD}:t:*") == []
    assert await redis_client.keys(f"{OLD}:u:*") == []
    assert await redis_client.keys(f"{OLD}:kp:*") == []
    assert int(await redis_client.hlen(k.tasks(Q))) == 3

    async with grpc.aio.insecure_channel(handle.address) as channel:
        broker = pb_grpc.BrokerServiceStub(channel)
        unique = pb.EnqueueRequest(task=spec(queue=Q, unique_key=UNIQUE_KEY,
                                             unique_ttl=Duration(seconds=60)))
        got = await refusal(broker.Enqueue(unique, timeout=5))
        assert (got.code, got.reason) == (grpc.StatusCode.ALREADY_EXISTS, "DUPLICATE_TASK")

        leased = (await broker.Lease(lease_request(Q, max_tasks=10), timeout=5)).tasks
        assert sorted(task.id for task in leased) == ["k1", "u"]  # one task of the key
        assert {task.id: task.payload for task in leased} == {"k1": b"k1", "u": b"u"}
        got = await refusal(broker.Enqueue(unique, timeout=5))
        assert got.reason == "DUPLICATE_TASK", "the lock still holds while its task runs"

        acked = await broker.Ack(pb.AckRequest(
            worker_id="w1", items=[pb.AckItem(lease=ref(task)) for task in leased]), timeout=5)
        assert all(not item.HasField("error") for item in acked.results)
        after = (await broker.Lease(lease_request(Q, max_tasks=10), timeout=5)).tasks
        assert [task.id for task in after] == ["k2"]
        # The ack released the lock: an equal unique task is accepted again.
        await broker.Enqueue(unique, timeout=5)


async def test_the_migration_runs_once(
    broker_factory: BrokerFactory, redis_client: redis.asyncio.Redis
) -> None:
    """A layout-1 key written after the version was set is not looked at again."""
    k = Keys(PREFIX)
    broker_factory(key_prefix=PREFIX)
    assert (await redis_client.get(k.layout_version())) == LAYOUT_VERSION.encode()
    await redis_client.sadd(k.queues(), Q)
    await redis_client.hset(f"{OLD}:t:late", mapping={"s": "pending"})
    broker_factory(key_prefix=PREFIX)
    assert await redis_client.exists(f"{OLD}:t:late") == 1
