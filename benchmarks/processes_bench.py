"""Scaling curve of ``leasq serve --processes N`` for N = 1, 2, 4 on one Redis.

Run: ``.venv/bin/python benchmarks/processes_bench.py`` (starts its own Redis and brokers;
``--quick`` for a fifth of the tasks). Two of broker_bench.py's scenarios, with its functions:
Enqueue with 64 calls in flight and EnqueueBatch(500) with 4 in flight. The load is spread over
several connections (one gRPC connection always lands on one process: the kernel hands out
connections, not calls) from ``--clients`` client processes, so that the client is not a single
core that caps every N alike. Printed per N: tasks/s over the whole run, and the CPU seconds
per task of all broker processes (parent and children) and of Redis, which load from other
programs on the machine distorts far less than the rates.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import grpc
import redis
from broker_bench import batch_enqueue, cpu_seconds, single_enqueue, task
from harness import running_stack

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import broker_service_pb2_grpc as pb_grpc

PROCESSES = (1, 2, 4)
# Each channel its own TCP connection (gRPC would otherwise share one between equal channels).
CHANNEL_OPTIONS = (("grpc.use_local_subchannel_pool", 1),)
CONNECTIONS_PER_CLIENT = 8

Scenario = Callable[[pb_grpc.BrokerServiceStub, int], Awaitable[float]]


def _scenario(name: str, in_flight: int) -> Scenario:
    """One connection's share of a scenario, with broker_bench's functions: Enqueue with
    ``in_flight`` calls at once, or EnqueueBatch(500) with its 4 at once."""
    if name == "enqueue":
        return lambda stub, n: single_enqueue(stub, n, in_flight)
    return lambda stub, n: batch_enqueue(stub, n, 500, "processes")


async def _client_load(
    address: str, name: str, n: int, connections: int, in_flight: int
) -> tuple[float, float]:
    """Run ``n`` tasks of scenario ``name`` over ``connections`` connections; (start, end)."""
    channels = [grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
                for _ in range(connections)]  # fmt: skip
    try:
        stubs = [pb_grpc.BrokerServiceStub(channel) for channel in channels]
        await asyncio.gather(*(s.Enqueue(pb.EnqueueRequest(task=task("warmup"))) for s in stubs))
        run = _scenario(name, in_flight)
        started = time.time()
        await asyncio.gather(*(run(stub, n // connections) for stub in stubs))
        return started, time.time()
    finally:
        for channel in channels:
            await channel.close()


def client_process(
    address: str, name: str, n: int, connections: int, in_flight: int
) -> tuple[float, float]:
    """Entry point of one client process."""
    return asyncio.run(_client_load(address, name, n, connections, in_flight))


def pids_naming(marker: str) -> list[int]:
    """Processes whose command line holds ``marker``: the broker parent and its children
    (they all name the benchmark's ready file), or the Redis of one port."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker.encode() in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def total_cpu(pids: list[int]) -> float:
    return sum(cpu_seconds(pid) for pid in pids if Path(f"/proc/{pid}").exists())


def measure(processes: int, name: str, n: int, clients: int) -> tuple[float, float, float]:
    """(tasks/s, broker CPU us/task, Redis CPU us/task) of one scenario at ``processes``."""
    with running_stack("--processes", str(processes)) as stack:
        brokers = pids_naming(str(stack.workdir / "ready"))
        redis_pid = int(redis.Redis.from_url(stack.redis_url).info("server")["process_id"])
        per_client = n // clients
        # Enqueue: 64 calls in flight in all; EnqueueBatch: 4 per connection.
        in_flight = max(1, 64 // (clients * CONNECTIONS_PER_CLIENT))
        before = total_cpu(brokers), cpu_seconds(redis_pid)
        with ProcessPoolExecutor(clients, mp_context=get_context("spawn")) as pool:
            spans = list(
                pool.map(
                    client_process,
                    [stack.address] * clients,
                    [name] * clients,
                    [per_client] * clients,
                    [CONNECTIONS_PER_CLIENT] * clients,
                    [in_flight] * clients,
                )
            )
        broker_cpu, redis_cpu = total_cpu(brokers) - before[0], cpu_seconds(redis_pid) - before[1]
    done = per_client // CONNECTIONS_PER_CLIENT * CONNECTIONS_PER_CLIENT * clients
    elapsed = max(end for _, end in spans) - min(start for start, _ in spans)
    # CPU includes each client's warmup calls: a few per connection, negligible beside n.
    return done / elapsed, broker_cpu / done * 1e6, redis_cpu / done * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a fifth of the tasks")
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    args = parser.parse_args()
    scale = 0.2 if args.quick else 1.0
    scenarios = (
        ("enqueue", "Enqueue, 64 in flight", int(40_000 * scale)),
        ("batch", "EnqueueBatch(500), 4 in flight per connection", int(400_000 * scale)),
    )
    print(
        f"cpus: {os.cpu_count()}, client processes: {args.clients} x "
        f"{CONNECTIONS_PER_CLIENT} connections, load average before: {os.getloadavg()}"
    )
    print(
        "| scenario | processes | tasks/s | broker CPU us/task | Redis CPU us/task |\n"
        "|---|--:|--:|--:|--:|"
    )
    for name, title, n in scenarios:
        for processes in PROCESSES:
            rate, broker_us, redis_us = measure(processes, name, n, args.clients)
            print(
                f"| {title} | {processes} | {rate:,.0f} | {broker_us:.0f} | {redis_us:.1f} |",
                flush=True,
            )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
