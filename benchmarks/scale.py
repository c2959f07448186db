"""Leasq's scale curves: Lease latency vs queue depth and vs queue count, memory per pending
task, Heartbeat cost vs leases held.

Run: ``.venv/bin/python benchmarks/scale.py`` (starts its own Redis and broker; ``--quick``
divides the depths by 10). Raw generated stubs, one call at a time, so each figure is the
broker's round trip; the setups of one curve exist side by side and are sampled in turn.
Every leased task is acked (untimed).
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


async def lease_once(stub: pb_grpc.BrokerServiceStub, request: pb.LeaseRequest) -> float:
    """Round trip of one Lease(max_tasks=1); the task is acked afterwards, untimed."""
    started = time.perf_counter()
    got = await stub.Lease(request)
    elapsed = time.perf_counter() - started
    assert len(got.tasks) == 1, "queue ran dry"
    items = [pb.AckItem(lease=r) for r in refs(got.tasks)]
    await stub.Ack(pb.AckRequest(worker_id=WORKER, items=items))
    return elapsed


def lease_request(queues: list[pb.QueueWeight]) -> pb.LeaseRequest:
    return pb.LeaseRequest(worker_id=WORKER, queues=queues, max_tasks=1, lease_duration=LEASE)


async def interleaved(
    stub: pb_grpc.BrokerServiceStub, requests: dict[str, pb.LeaseRequest], samples: int
) -> dict[str, dict[str, float]]:
    """Lease latency of several setups, one call of each in turn: a change in the machine's
    load during the run reaches every setup alike, so their ratios stay meaningful."""
    times: dict[str, list[float]] = {key: [] for key in requests}
    for _ in range(samples):
        for key, request in requests.items():
            times[key].append(await lease_once(stub, request))
    return {key: percentiles(values) for key, values in times.items()}


async def depth_curve(
    stub: pb_grpc.BrokerServiceStub, client: redis.asyncio.Redis, depths: list[int], samples: int
) -> dict[str, Any]:
    """Queues of each depth side by side (topped up by ``samples`` so that none drops below
    its depth); memory per pending task measured as the deepest one fills."""
    await client.flushdb()
    deepest = max(depths)
    # The deepest queue has the usual name: the queue name is part of every task's key.
    names = {depth: "default" if depth == deepest else f"depth-{depth}" for depth in depths}
    before = await used_memory(client)
    await fill(stub, names[deepest], deepest)
    memory = per_task(await used_memory(client) - before, deepest, LISTPACK_VALUE)
    for depth in depths:
        await fill(stub, names[depth], samples if depth == deepest else depth + samples)
    requests = {str(d): lease_request([pb.QueueWeight(queue=names[d])]) for d in depths}
    lease = await interleaved(stub, requests, samples)
    print(f"lease by depth: {lease}", flush=True)
    return {"lease": lease, "memory": memory}


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
        await fill(stub, "default", tasks)
        used = await used_memory(client) - before
    finally:
        await client.flushdb()
        await client.config_set("hash-max-ziplist-value", LISTPACK_VALUE)
    print(f"memory at Redis defaults: {used / tasks - len(PAYLOAD):.0f} B beyond payload")
    return per_task(used, tasks, REDIS_DEFAULT_LISTPACK_VALUE)


async def queue_curve(
    stub: pb_grpc.BrokerServiceStub, client: redis.asyncio.Redis, counts: list[int], samples: int
) -> dict[str, Any]:
    """Lease latency asking 1, 10 or 100 weighted queues (weights 1-10) of 10,000 tasks in
    all, each set side by side."""
    await client.flushdb()
    requests = {}
    for count in counts:
        names = [f"w{count}-{i}" for i in range(count)]
        per_queue = (10_000 + samples) // count + 1
        await asyncio.gather(*(fill(stub, name, per_queue) for name in names))
        weights = [pb.QueueWeight(queue=name, weight=i % 10 + 1) for i, name in enumerate(names)]
        requests[str(count)] = lease_request(weights)
    out = await interleaved(stub, requests, samples)
    print(f"lease by queue count: {out}", flush=True)
    return out


async def heartbeat_curve(
    stub: pb_grpc.BrokerServiceStub, client: redis.asyncio.Redis, sizes: list[int], samples: int
) -> dict[str, Any]:
    """Heartbeat round trip for one worker holding 1 to 1,000 leases, sizes in turn."""
    await client.flushdb()
    await fill(stub, "held", max(sizes))
    ask = pb.LeaseRequest(worker_id=WORKER, queues=[pb.QueueWeight(queue="held")],
                          max_tasks=max(sizes), lease_duration=LEASE)  # fmt: skip
    leases = refs((await stub.Lease(ask)).tasks)
    assert len(leases) == max(sizes), f"leased {len(leases)}"
    requests = {size: pb.HeartbeatRequest(worker_id=WORKER, leases=leases[:size]) for size in sizes}
    times: dict[int, list[float]] = {size: [] for size in sizes}
    for _ in range(samples):
        for size, request in requests.items():
            started = time.perf_counter()
            answer = await stub.Heartbeat(request)
            times[size].append(time.perf_counter() - started)
            assert len(answer.leases) == size
    out = {str(size): percentiles(values) for size, values in times.items()}
    print(f"heartbeat by leases held: {out}", flush=True)
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
