"""Drives a real broker with the raw generated stubs and prints a table of throughputs.

Run: ``.venv/bin/python benchmarks/broker_bench.py`` (starts its own Redis and broker).
Targets on a 2-core machine: Enqueue x64 in flight >= 5,000/s, Enqueue calls in turn >= 2,000/s
(a bare gRPC health check round trip to the same broker, in turn, is printed as the floor),
EnqueueBatch(500) >= 50,000/s,
Lease(100) + batched Ack drain >= 15,000/s, idle enqueue -> lease p50 <= 2 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Awaitable
from pathlib import Path

import grpc
from google.protobuf.duration_pb2 import Duration
from grpc_floor import calls_per_second
from grpc_health.v1 import health_pb2, health_pb2_grpc
from harness import print_cpu_table, running_stack

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import broker_service_pb2_grpc as pb_grpc
from leasq.v1 import task_pb2

PAYLOAD = b'{"user_id": 12345, "template": "welcome"}'


def task(queue: str = "bench") -> task_pb2.TaskSpec:
    return task_pb2.TaskSpec(type="bench:noop", payload=PAYLOAD, queue=queue)


async def single_enqueue(stub: pb_grpc.BrokerServiceStub, n: int, in_flight: int) -> float:
    request = pb.EnqueueRequest(task=task())
    return await calls_per_second(lambda: stub.Enqueue(request), n, in_flight)


async def health_checks(channel: grpc.aio.Channel, n: int, in_flight: int) -> float:
    """Bare gRPC round trips to the same broker (no Redis, no Leasq code): the floor under any
    one-RPC-per-task call on this machine."""
    stub = health_pb2_grpc.HealthStub(channel)
    request = health_pb2.HealthCheckRequest()
    return await calls_per_second(lambda: stub.Check(request), n, in_flight)


async def batch_enqueue(stub: pb_grpc.BrokerServiceStub, n: int, size: int, queue: str) -> float:
    request = pb.EnqueueBatchRequest(tasks=[task(queue) for _ in range(size)])
    batches = n // size
    in_flight = 4
    remaining = batches

    async def client() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await stub.EnqueueBatch(request)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(in_flight)))
    return batches * size / (time.perf_counter() - started)


async def drain(stub: pb_grpc.BrokerServiceStub, n: int, queue: str, leasers: int) -> float:
    done = 0
    lease = pb.LeaseRequest(worker_id="bench", queues=[pb.QueueWeight(queue=queue)],
                            max_tasks=100)

    async def leaser() -> None:
        nonlocal done
        got = await stub.Lease(lease)
        while got.tasks:
            done += len(got.tasks)
            answer = await stub.Ack(pb.AckRequest(
                worker_id="bench", lease_next=lease,
                items=[pb.AckItem(lease=pb.LeaseRef(queue=t.queue, task_id=t.id,
                                                    lease_token=t.lease_token))
                       for t in got.tasks]))
            got = pb.LeaseResponse(tasks=answer.next_tasks)

    started = time.perf_counter()
    await asyncio.gather(*(leaser() for _ in range(leasers)))
    elapsed = time.perf_counter() - started
    assert done == n, f"drained {done} of {n}"
    return n / elapsed


async def idle_latency(stub: pb_grpc.BrokerServiceStub, samples: int) -> tuple[float, float]:
    lease = pb.LeaseRequest(worker_id="idle", queues=[pb.QueueWeight(queue="idle")],
                            wait=Duration(seconds=10))
    request = pb.EnqueueRequest(task=task("idle"))
    latencies = []
    for _ in range(samples):
        waiting = asyncio.ensure_future(stub.Lease(lease))
        await asyncio.sleep(0.005)  # let the poll reach its wait
        started = time.perf_counter()
        await stub.Enqueue(request)
        got = await waiting
        latencies.append((time.perf_counter() - started) * 1000)
        t = got.tasks[0]
        await stub.Ack(pb.AckRequest(worker_id="idle", items=[pb.AckItem(
            lease=pb.LeaseRef(queue=t.queue, task_id=t.id, lease_token=t.lease_token))]))
    latencies.sort()
    return statistics.median(latencies), latencies[int(len(latencies) * 0.99) - 1]


def broker_pid(workdir: Path) -> int:
    """The broker process of this stack (the one whose command line names its ready file)."""
    marker = str(workdir / "ready").encode()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker in (proc / "cmdline").read_bytes():
                    return int(proc.name)
            except OSError:
                continue
    raise RuntimeError("broker process not found")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process: a per-task cost that load on other cores
    distorts far less than throughput does."""
    fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measured(pid: int, n: int, run: Awaitable[float]) -> tuple[float, float]:
    """(tasks/s, broker CPU microseconds per task) of one scenario."""
    before = cpu_seconds(pid)
    rate = await run
    return rate, (cpu_seconds(pid) - before) / n * 1e6


async def main(scale: float) -> None:
    load_before = os.getloadavg()
    with running_stack() as stack:
        pid = broker_pid(stack.workdir)
        async with grpc.aio.insecure_channel(stack.address) as channel:
            stub = pb_grpc.BrokerServiceStub(channel)
            await stub.Enqueue(pb.EnqueueRequest(task=task("warmup")))
            n_single, n_batch = int(20_000 * scale), int(100_000 * scale)
            single = await measured(pid, n_single, single_enqueue(stub, n_single, 64))
            n_turn = n_single // 4
            turn = await measured(pid, n_turn, single_enqueue(stub, n_turn, 1))
            floor = await measured(pid, n_turn, health_checks(channel, n_turn, 1))
            batch = await measured(pid, n_batch, batch_enqueue(stub, n_batch, 500, "drain"))
            drained = await measured(pid, n_batch, drain(stub, n_batch, "drain", 4))
            p50, p99 = await idle_latency(stub, int(500 * scale) or 50)
    rows = [
        ("Enqueue, 64 in flight", f"{single[0]:,.0f} tasks/s", f"{single[1]:.0f}", ">= 5,000"),
        ("Enqueue, calls in turn", f"{turn[0]:,.0f} tasks/s ({1e6 / turn[0]:.0f} us/call)",
         f"{turn[1]:.0f}", ">= 2,000"),
        ("gRPC health check, calls in turn (floor)",
         f"{floor[0]:,.0f} calls/s ({1e6 / floor[0]:.0f} us/call)", f"{floor[1]:.0f}", ""),
        ("EnqueueBatch(500)", f"{batch[0]:,.0f} tasks/s", f"{batch[1]:.0f}", ">= 50,000"),
        ("Lease(100) + batched Ack drain", f"{drained[0]:,.0f} tasks/s", f"{drained[1]:.0f}",
         ">= 15,000"),
        ("idle enqueue -> lease p50", f"{p50:.2f} ms", "", "<= 2 ms"),
        ("idle enqueue -> lease p99", f"{p99:.2f} ms", "", ""),
    ]
    print_cpu_table(rows, load_before)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply task counts")
    asyncio.run(main(parser.parse_args().scale))
