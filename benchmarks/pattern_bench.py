"""Lease cost with a queue pattern that matches 1,000 queues, against a Lease of one queue.

Run: ``.venv/bin/python benchmarks/pattern_bench.py`` (starts its own Redis and broker;
``--leases 3000 --runs 3`` by default). Each scenario makes sequential Lease calls of one task
(tasks stay ACTIVE; nothing else runs) and reports the call's p50 and p90 as the client sees it
and the broker's CPU per call:

- ``1 queue``: ``queues=[solo]``, the queue full.
- ``pattern, 1 of 1,000 ready``: ``pattern=t.*`` over 1,000 known queues, one full, 999 empty.
- ``pattern, 10 of 1,000 ready``: ten of them full.
- ``pattern, all 1,000 ready``: every one holds tasks.

The 1,000 queues exist (each received a task, leased away) before the timed phase, so the
pattern index knows them all. Target: every pattern row's p50 within 2x of ``1 queue``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import grpc
from broker_bench import broker_pid, cpu_seconds
from google.protobuf.duration_pb2 import Duration
from harness import running_stack

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import broker_service_pb2_grpc as pb_grpc
from leasq.v1 import task_pb2

QUEUES = [f"t.{i:04}" for i in range(1000)]
WARM_UP = 200


async def fill(stub: pb_grpc.BrokerServiceStub, counts: dict[str, int]) -> None:
    specs = [task_pb2.TaskSpec(type="bench:noop", queue=q)
             for q, n in counts.items() for _ in range(n)]
    for start in range(0, len(specs), 1000):
        await stub.EnqueueBatch(pb.EnqueueBatchRequest(tasks=specs[start : start + 1000]))


async def drain(stub: pb_grpc.BrokerServiceStub, request: pb.LeaseRequest) -> None:
    while (await stub.Lease(request)).tasks:
        pass


async def timed(stub: pb_grpc.BrokerServiceStub, request: pb.LeaseRequest, n: int,
                pid: int) -> tuple[list[float], float, int]:
    """Latencies (ms), broker CPU µs per call, tasks leased."""
    latencies: list[float] = []
    leased = 0
    cpu = cpu_seconds(pid)
    for _ in range(n):
        started = time.perf_counter()
        response = await stub.Lease(request)
        latencies.append((time.perf_counter() - started) * 1000)
        leased += len(response.tasks)
    return latencies, (cpu_seconds(pid) - cpu) / n * 1e6, leased


async def scenario(stub: pb_grpc.BrokerServiceStub, pid: int, name: str, n: int
                   ) -> tuple[list[float], float, int]:
    # Leases outlive the run: no task is reclaimed into a queue mid-scenario.
    hour = Duration(seconds=3600)
    one = pb.LeaseRequest(worker_id="bench", queues=[pb.QueueWeight(queue="solo")],
                          lease_duration=hour)
    pattern = pb.LeaseRequest(worker_id="bench", queues=[pb.QueueWeight(pattern="t.*")],
                              lease_duration=hour)
    wide = pb.LeaseRequest(worker_id="bench", queues=[pb.QueueWeight(pattern="t.*")],
                           max_tasks=1000, lease_duration=hour)
    await drain(stub, wide)
    await drain(stub, one)
    if name == "1 queue":
        await fill(stub, {"solo": n + WARM_UP})
        request = one
    else:
        ready = {"1 of 1,000": QUEUES[500:501], "10 of 1,000": QUEUES[::100],
                 "all 1,000": QUEUES}[name.removeprefix("pattern, ").removesuffix(" ready")]
        await fill(stub, {q: -(-(n + WARM_UP) // len(ready)) + 1 for q in ready})
        request = pattern
    for _ in range(WARM_UP):  # connection, caches
        await stub.Lease(request)
    return await timed(stub, request, n, pid)


async def run(leases: int, runs: int) -> None:
    names = ["1 queue", "pattern, 1 of 1,000 ready", "pattern, 10 of 1,000 ready",
             "pattern, all 1,000 ready"]
    results: dict[str, list[tuple[float, float, float, int]]] = {name: [] for name in names}
    with running_stack() as stack:
        pid = broker_pid(stack.workdir)
        async with grpc.aio.insecure_channel(stack.address) as channel:
            stub = pb_grpc.BrokerServiceStub(channel)
            await fill(stub, {q: 1 for q in QUEUES})  # every queue exists and is known
            for _ in range(runs):
                for name in names:
                    latencies, cpu_us, leased = await scenario(stub, pid, name, leases)
                    latencies.sort()
                    results[name].append((statistics.median(latencies),
                                          latencies[int(len(latencies) * 0.9)], cpu_us, leased))
    base = statistics.median(p50 for p50, *_ in results["1 queue"])
    print(f"{leases:,} sequential Lease(max_tasks=1) calls per run, {runs} runs "
          "(median of runs; spread min-max)")
    print("| scenario | p50 | p50 spread | p90 | broker CPU per call | p50 vs 1 queue | "
          "tasks per call |")
    print("|---|--:|--:|--:|--:|--:|--:|")
    for name in names:
        rows = results[name]
        p50s = [r[0] for r in rows]
        p50 = statistics.median(p50s)
        print(f"| {name} | {p50:.3f} ms | {min(p50s):.3f}-{max(p50s):.3f} ms | "
              f"{statistics.median(r[1] for r in rows):.3f} ms | "
              f"{statistics.median(r[2] for r in rows):.0f} µs | {p50 / base:.2f}x | "
              f"{statistics.median(r[3] for r in rows) / leases:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leases", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(run(args.leases, args.runs))


if __name__ == "__main__":
    main()
