"""Background cost with many queues: 10,000 empty queues plus 10 busy ones, against one queue.

Run: ``.venv/bin/python benchmarks/many_queues_bench.py`` (starts its own Redis and broker per
setup; ``--queues 10000 --idle-seconds 30`` by default, ``--quick``: 2,000 queues, 10 s).
Two setups, each on a fresh stack:

- ``1 queue``: only the probe queues below exist.
- ``many queues``: ``--queues`` queues that each held one task (leased and acked, so they are
  empty but known), and 10 busy queues, each holding 50 pending, 50 scheduled (in an
  hour), 20 active (leased for an hour), 20 in retry (in an hour) and 20 completed (kept an
  hour) tasks. Nothing calls the broker while the idle CPU is measured.

Measured per setup, after a 5 s settle:
- idle CPU: the broker's process CPU time (and Redis' ``INFO cpu``) over ``--idle-seconds``,
  as a percentage of one core;
- idle latency: one long-poll Lease at a time on queue ``probe`` (each task acked), a probe
  enqueued every 20 ms; enqueue sent -> Lease answer received, p50 and p99;
- lease recovery: a task leased for 1 s and never acked while another Lease waits on its queue;
  lease expiry -> the waiting Lease receives the task, median of ``--recoveries``.

Targets (``many queues``): idle broker CPU <= 2% of a core; lease recovery median and idle
latency p50/p99 within 1.2x of ``1 queue``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar

import grpc
import redis.asyncio
from broker_bench import broker_pid, cpu_seconds
from google.protobuf.duration_pb2 import Duration
from harness import running_stack

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import broker_service_pb2_grpc as pb_grpc
from leasq.v1 import task_pb2

T = TypeVar("T")
HOUR = Duration(seconds=3600)
SECOND = Duration(seconds=1)
LONG_POLL = Duration(seconds=20)
BUSY = 10
SETTLE_S = 5.0
PROBES = 300
PROBE_GAP_S = 0.02


def lease_of(queue: str = "", *, pattern: str = "", max_tasks: int = 1,
             lease: Duration = HOUR, wait: Duration | None = None) -> pb.LeaseRequest:
    weight = pb.QueueWeight(pattern=pattern) if pattern else pb.QueueWeight(queue=queue)
    request = pb.LeaseRequest(worker_id="bench", queues=[weight], max_tasks=max_tasks,
                              lease_duration=lease)
    if wait is not None:
        request.wait.CopyFrom(wait)
    return request


async def enqueue(stub: pb_grpc.BrokerServiceStub, specs: list[task_pb2.TaskSpec]) -> None:
    for start in range(0, len(specs), 1000):
        batch = pb.EnqueueBatchRequest(tasks=specs[start : start + 1000])
        await retried(partial(stub.EnqueueBatch, batch))


async def retried(call: Callable[[], Awaitable[T]]) -> T:
    """A set-up call, repeated while the broker answers UNAVAILABLE (with many queues, a broker
    that scans them all can keep Redis too busy to answer in time: that is what is measured
    here, but the set-up must get through)."""
    while True:
        try:
            return await call()
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE:
                raise
            await asyncio.sleep(0.5)


async def lease_and_ack(stub: pb_grpc.BrokerServiceStub, request: pb.LeaseRequest) -> None:
    """Lease with ``request`` and ack, until the Lease finds nothing."""
    while True:
        tasks = (await retried(partial(stub.Lease, request))).tasks
        if not tasks:
            return
        items = [pb.AckItem(lease=pb.LeaseRef(queue=t.queue, task_id=t.id,
                                              lease_token=t.lease_token)) for t in tasks]
        await retried(partial(stub.Ack, pb.AckRequest(worker_id="bench", items=items)))


async def make_idle_queues(stub: pb_grpc.BrokerServiceStub, count: int) -> None:
    """``count`` queues that each held one task, leased (100 queues per Lease) and acked."""
    names = [f"idle.{i:05}" for i in range(count)]
    await enqueue(stub, [task_pb2.TaskSpec(type="bench:noop", queue=q) for q in names])
    for start in range(0, count, 100):
        group = names[start : start + 100]
        request = pb.LeaseRequest(worker_id="bench", queues=[pb.QueueWeight(queue=q)
                                                             for q in group],
                                  max_tasks=len(group), lease_duration=HOUR)
        await lease_and_ack(stub, request)


async def make_busy_queue(stub: pb_grpc.BrokerServiceStub, queue: str) -> None:
    later = int(time.time()) + 3600
    spec = task_pb2.TaskSpec(type="bench:noop", queue=queue)
    kept = task_pb2.TaskSpec(type="bench:noop", queue=queue, retention=HOUR)
    await enqueue(stub, [kept] * 20)
    await lease_and_ack(stub, lease_of(queue, max_tasks=20))
    await enqueue(stub, [spec] * 40)
    tasks = (await retried(partial(stub.Lease, lease_of(queue, max_tasks=40)))).tasks
    nack = pb.NackRequest(worker_id="bench", items=[
        pb.NackItem(lease=pb.LeaseRef(queue=t.queue, task_id=t.id, lease_token=t.lease_token),
                    retry_after=HOUR, error="later") for t in tasks[:20]])
    await retried(partial(stub.Nack, nack))
    scheduled = task_pb2.TaskSpec(type="bench:noop", queue=queue)
    scheduled.process_at.FromSeconds(later)
    await enqueue(stub, [spec] * 50 + [scheduled] * 50)


async def idle_cpu(pid: int, redis_url: str, seconds: float) -> tuple[float, float]:
    """Percent of one core used by the broker and by Redis over ``seconds`` of no calls."""
    client = redis.asyncio.Redis.from_url(redis_url)

    async def redis_cpu() -> float:
        info = await client.info("cpu")
        return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])

    try:
        broker_before, redis_before = cpu_seconds(pid), await redis_cpu()
        await asyncio.sleep(seconds)
        broker, redis_used = cpu_seconds(pid) - broker_before, await redis_cpu() - redis_before
    finally:
        await client.aclose()
    return broker / seconds * 100, redis_used / seconds * 100


async def idle_latency(stub: pb_grpc.BrokerServiceStub) -> tuple[float, float]:
    """p50 and p99 (ms) of enqueue sent -> long-poll Lease answer received."""
    sent: dict[str, float] = {}
    latencies: list[float] = []

    async def worker() -> None:
        while len(latencies) < PROBES:
            tasks = (await stub.Lease(lease_of("probe", wait=LONG_POLL))).tasks
            got = time.perf_counter()
            for task in tasks:
                latencies.append((got - sent[task.id]) * 1000)
                await stub.Ack(pb.AckRequest(worker_id="bench", items=[pb.AckItem(
                    lease=pb.LeaseRef(queue=task.queue, task_id=task.id,
                                      lease_token=task.lease_token))]))

    leasing = asyncio.create_task(worker())
    await asyncio.sleep(0.2)
    for n in range(PROBES):
        task_id = f"probe-{n}"
        sent[task_id] = time.perf_counter()
        await stub.Enqueue(pb.EnqueueRequest(task=task_pb2.TaskSpec(
            type="bench:noop", queue="probe", task_id=task_id)))
        await asyncio.sleep(PROBE_GAP_S)
    await asyncio.wait_for(leasing, 30)
    ordered = sorted(latencies)
    return statistics.median(ordered), ordered[round(len(ordered) * 0.99) - 1]


async def recovery(stub: pb_grpc.BrokerServiceStub, runs: int) -> float:
    """Median ms from a lease's expiry to a waiting Lease receiving its task."""
    samples: list[float] = []
    for n in range(runs):
        await stub.Enqueue(pb.EnqueueRequest(task=task_pb2.TaskSpec(
            type="bench:noop", queue="crash", task_id=f"crash-{n}")))
        lost = (await stub.Lease(lease_of("crash", lease=SECOND))).tasks[0]
        expires = lost.lease_expires_at.ToNanoseconds() / 1e9
        again = (await stub.Lease(lease_of("crash", wait=LONG_POLL))).tasks
        got = time.time()
        if [t.id for t in again] != [lost.id]:
            raise RuntimeError(f"the waiting Lease got {list(again)} instead of {lost.id}")
        samples.append((got - expires) * 1000)
        await stub.Ack(pb.AckRequest(worker_id="bench", items=[pb.AckItem(lease=pb.LeaseRef(
            queue="crash", task_id=again[0].id, lease_token=again[0].lease_token))]))
    return statistics.median(samples)


async def measure(setup: str, queues: int, idle_seconds: float, runs: int) -> dict[str, float]:
    with running_stack() as stack:
        pid = broker_pid(stack.workdir)
        async with grpc.aio.insecure_channel(stack.address) as channel:
            stub = pb_grpc.BrokerServiceStub(channel)
            if setup == "many queues":
                await make_idle_queues(stub, queues)
                for n in range(BUSY):
                    await make_busy_queue(stub, f"busy.{n}")
            print(f"{setup}: set up; measuring", file=sys.stderr, flush=True)
            await asyncio.sleep(SETTLE_S)
            broker_cpu, redis_cpu = await idle_cpu(pid, stack.redis_url, idle_seconds)
            p50, p99 = await idle_latency(stub)
            recovered = await recovery(stub, runs)
    return {"cpu": broker_cpu, "redis_cpu": redis_cpu, "p50": p50, "p99": p99,
            "recovery": recovered}


def verdict(ok: bool) -> str:
    return "met" if ok else "missed"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queues", type=int, default=10_000)
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--recoveries", type=int, default=9)
    parser.add_argument("--quick", action="store_true",
                        help="2,000 queues, 10 s of idle CPU, 5 recoveries")
    args = parser.parse_args()
    if args.quick:
        args.queues, args.idle_seconds, args.recoveries = 2000, 10.0, 5
    rows = {setup: await measure(setup, args.queues, args.idle_seconds, args.recoveries)
            for setup in ("1 queue", "many queues")}
    print(f"{args.queues:,} empty queues + {BUSY} busy ones, against one queue")
    print("| setup | idle broker CPU | idle Redis CPU | lease recovery p50 | idle latency p50 "
          "| idle latency p99 |\n|---|--:|--:|--:|--:|--:|")
    for setup, r in rows.items():
        print(f"| {setup} | {r['cpu']:.2f}% | {r['redis_cpu']:.2f}% | {r['recovery']:.1f} ms "
              f"| {r['p50']:.2f} ms | {r['p99']:.2f} ms |")
    one, many = rows["1 queue"], rows["many queues"]
    print(f"idle broker CPU {many['cpu']:.2f}% of a core <= 2%: {verdict(many['cpu'] <= 2.0)}")
    for key, what in (("recovery", "lease recovery median"), ("p50", "idle latency p50"),
                      ("p99", "idle latency p99")):
        ratio = many[key] / one[key] if one[key] > 0 else float("inf")
        print(f"{what} {ratio:.2f}x one queue <= 1.2x: {verdict(ratio <= 1.2)}")


if __name__ == "__main__":
    asyncio.run(main())
