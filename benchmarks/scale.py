"""Leasq's scale curves: Lease latency vs queue depth and vs queue count, memory per pending
task, Heartbeat cost vs leases held.

Run: ``.venv/bin/python benchmarks/scale.py`` (starts its own Redis and broker; ``--quick``
divides the depths by 10). Raw generated stubs, one call at a time, so each figure is the
broker's round trip. Every leased task is acked (untimed), so depths stay near their level.
Targets: Lease p50 at 1M pending within 1.2x of that at 1k; 100 queues within 2x of one;
<= 400 bytes of Redis memory per pending task beyond its 100-byte payload (measured with the
embedded Redis's hash-max-listpack-value of 1024, and again at Redis's default of 64).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any

import grpc
import machine
import redis.asyncio
from google.protobuf.duration_pb2 import Duration
from harness import running_stack

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import broker_service_pb2_grpc as pb_grpc
from leasq.v1 import task_pb2

RESULTS = Path(__file__).resolve().parent / "results"
PAYLOAD = b"x" * 100
WORKER = "scale-bench"
# The embedded Redis's setting (leasq_broker.embedded_redis), recommended for any Redis that
# holds Leasq tasks; Redis's own default is 64.
LISTPACK_VALUE = 1024
REDIS_DEFAULT_LISTPACK_VALUE = 64
LEASE = Duration(seconds=600)


def percentiles(samples: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples)
    return {"p50": statistics.median(ms), "p99": ms[min(len(ms) - 1, round(len(ms) * 0.99) - 1)]}


async def fill(stub: pb_grpc.BrokerServiceStub, queue: str, count: int) -> None:
    """``count`` tasks with a 100-byte payload, EnqueueBatch(1,000) with 4 calls in flight."""
    spec = task_pb2.TaskSpec(type="bench:noop", queue=queue, payload=PAYLOAD)
    sizes = [min(1000, count - start) for start in range(0, count, 1000)]

    async def lane(mine: list[int]) -> None:
        for size in mine:
            answer = await stub.EnqueueBatch(pb.EnqueueBatchRequest(tasks=[spec] * size))
            assert answer.enqueued_count == size, answer

    await asyncio.gather(*(lane(sizes[i::4]) for i in range(4)))


def refs(tasks: Any) -> list[pb.LeaseRef]:
    return [pb.LeaseRef(queue=t.queue, task_id=t.id, lease_token=t.lease_token) for t in tasks]


async def lease_samples(
    stub: pb_grpc.BrokerServiceStub, queues: list[pb.QueueWeight], samples: int
) -> dict[str, float]:
    """Round trip of Lease(max_tasks=1) over ``samples`` calls; each task acked afterwards."""
    request = pb.LeaseRequest(worker_id=WORKER, queues=queues, max_tasks=1, lease_duration=LEASE)
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        got = await stub.Lease(request)
        times.append(time.perf_counter() - started)
        assert len(got.tasks) == 1, "queue ran dry"
        await stub.Ack(
            pb.AckRequest(worker_id=WORKER, items=[pb.AckItem(lease=r) for r in refs(got.tasks)])
        )
    return percentiles(times)


async def depth_curve(
    stub: pb_grpc.BrokerServiceStub, client: redis.asyncio.Redis, depths: list[int], samples: int
) -> dict[str, Any]:
    """Lease latency as one queue deepens; memory per pending task at the deepest level."""
    await client.flushdb()
    before = await used_memory(client)
    out: dict[str, Any] = {"lease": {}}
    level = 0
    for depth in sorted(depths):
        await fill(stub, "deep", depth - level)
        level = depth
        if depth == max(depths):
            out["memory"] = per_task(await used_memory(client) - before, depth, LISTPACK_VALUE)
        out["lease"][str(depth)] = await lease_samples(
            stub, [pb.QueueWeight(queue="deep")], samples
        )
        level -= samples
        print(f"depth {depth:,}: {out['lease'][str(depth)]}", flush=True)
    return out


async def used_memory(client: redis.asyncio.Redis) -> int:
    await client.memory_purge()
    return int((await client.info("memory"))["used_memory"])


def per_task(used: int, tasks: int, listpack_value: int) -> dict[str, float]:
    return {
        "tasks": tasks,
        "bytes_per_task": used / tasks,
        "beyond_payload": used / tasks - len(PAYLOAD),
        "hash_max_listpack_value": listpack_value,
    }


async def memory_at_redis_default(
    stub: pb_grpc.BrokerServiceStub, client: redis.asyncio.Redis, tasks: int
) -> dict[str, float]:
    """The same measure on a Redis left at its default listpack limit."""
    await client.config_set("hash-max-ziplist-value", REDIS_DEFAULT_LISTPACK_VALUE)
    try:
        await client.flushdb()
        before = await used_memory(client)
        await fill(stub, "deep", tasks)
        used = await used_memory(client) - before
    finally:
        await client.flushdb()
        await client.config_set("hash-max-ziplist-value", LISTPACK_VALUE)
    print(f"memory at Redis defaults: {used / tasks - len(PAYLOAD):.0f} B beyond payload")
    return per_task(used, tasks, REDIS_DEFAULT_LISTPACK_VALUE)


async def queue_curve(
    stub: pb_grpc.BrokerServiceStub, client: redis.asyncio.Redis, counts: list[int], samples: int
) -> dict[str, Any]:
    """Lease latency with 1, 10, 100 weighted queues (weights 1-10), 10,000 tasks in all."""
    out = {}
    for count in counts:
        await client.flushdb()
        names = [f"w{count}-{i}" for i in range(count)]
        await asyncio.gather(*(fill(stub, name, 10_000 // count) for name in names))
        queues = [pb.QueueWeight(queue=name, weight=i % 10 + 1) for i, name in enumerate(names)]
        out[str(count)] = await lease_samples(stub, queues, samples)
        print(f"{count} queues: {out[str(count)]}", flush=True)
    return out


async def heartbeat_curve(
    stub: pb_grpc.BrokerServiceStub, client: redis.asyncio.Redis, sizes: list[int], samples: int
) -> dict[str, Any]:
    """Heartbeat round trip for one worker holding 1 to 1,000 leases."""
    await client.flushdb()
    await fill(stub, "held", max(sizes))
    held = await stub.Lease(
        pb.LeaseRequest(
            worker_id=WORKER,
            queues=[pb.QueueWeight(queue="held")],
            max_tasks=max(sizes),
            lease_duration=LEASE,
        )
    )
    leases = refs(held.tasks)
    assert len(leases) == max(sizes), f"leased {len(leases)}"
    out = {}
    for size in sizes:
        request = pb.HeartbeatRequest(worker_id=WORKER, leases=leases[:size])
        times = []
        for _ in range(samples):
            started = time.perf_counter()
            answer = await stub.Heartbeat(request)
            times.append(time.perf_counter() - started)
            assert len(answer.leases) == size
        out[str(size)] = percentiles(times)
        print(f"heartbeat {size} leases: {out[str(size)]}", flush=True)
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    depths = [d // (10 if args.quick else 1) for d in (1_000, 100_000, 1_000_000)]
    depths[0] = 1_000
    with running_stack() as stack:
        client = redis.asyncio.Redis.from_url(stack.redis_url)
        await client.config_set("hash-max-ziplist-value", LISTPACK_VALUE)
        result: dict[str, Any] = {
            "machine": machine.facts(stack.redis_url),
            "load_before": machine.load(),
            "samples": args.samples,
        }
        async with grpc.aio.insecure_channel(stack.address) as channel:
            stub = pb_grpc.BrokerServiceStub(channel)
            await fill(stub, "warmup", 10)
            result["depth"] = await depth_curve(stub, client, depths, args.samples)
            result["memory_default"] = await memory_at_redis_default(stub, client, depths[-1])
            result["queues"] = await queue_curve(stub, client, [1, 10, 100], args.samples)
            result["heartbeat"] = await heartbeat_curve(stub, client, [1, 10, 100, 1000], 50)
        await client.aclose()
        result["load_after"] = machine.load()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=500, help="Lease calls per point")
    parser.add_argument("--quick", action="store_true", help="depths 1k/10k/100k, 200 samples")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.quick:
        args.samples = 200
    out = args.out or RESULTS / ("scale-quick.json" if args.quick else "scale.json")
    started = time.monotonic()
    result = asyncio.run(run(args))
    result["duration_s"] = round(time.monotonic() - started)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out} in {result['duration_s']} s", flush=True)


if __name__ == "__main__":
    main()
