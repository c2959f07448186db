"""The dashboard's overview with 1,000 queues holding 1,000,000 tasks: server render time and
Redis work per page.

Run: ``.venv/bin/python benchmarks/dashboard_bench.py`` (``--queues 1000 --tasks 1000000
--requests 20``). Starts its own Redis (no persistence) and a broker with ``--dashboard``.

Seeding goes through the broker's gRPC API, as producers and workers would: EnqueueBatch of
1,000 tasks per call, 8 calls in flight (90% pending, 10% scheduled an hour ahead); then in
every queue one Lease of 3 tasks, 2 acked and 1 retried an hour later (so that every queue has
today's processed/failed counters, an active-free retry entry, and latency to show).

Measured for the overview page and for its daily chart's data (``overview/history``, 7 and 90
days), after one warm-up request each:
- server time: the view's own ``Server-Timing`` (``total``: wall time from the request's
  arrival at the view to the rendered answer, Redis reads included; ``cpu``: the broker
  process' CPU time meanwhile, which load from other processes distorts far less), median and
  p95 over ``--requests`` requests; Redis' CPU per request (``INFO cpu`` delta); the client's
  wall time for comparison;
- Redis work per page: ``INFO commandstats`` deltas (commands by name) and ``INFO stats``'s
  ``total_reads_processed`` delta (read events Redis handled: at least one per round trip; a
  pipeline of 100s of KB arrives in several reads, so this bounds round trips from above).
  The benchmark's own INFO calls are subtracted.

Target: the overview renders in under 300 ms on the server (median and p95).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections import Counter
from typing import Any

import grpc
import httpx
import redis.asyncio
from google.protobuf.duration_pb2 import Duration
from harness import free_port, running_stack

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import broker_service_pb2_grpc as pb_grpc
from leasq.v1 import task_pb2

HOUR = Duration(seconds=3600)
BATCH = 1000
IN_FLIGHT = 8
TARGET_MS = 300.0


def queue_name(n: int) -> str:
    return f"tenant-{n:04}.jobs"


async def seed(stub: pb_grpc.BrokerServiceStub, queues: int, tasks: int) -> float:
    """Enqueue ``tasks`` spread over ``queues`` with EnqueueBatch; seconds taken."""
    per_queue = tasks // queues
    started = time.perf_counter()
    semaphore = asyncio.Semaphore(IN_FLIGHT)

    async def one_queue(n: int) -> None:
        queue = queue_name(n)
        later = task_pb2.TaskSpec(type="report.render", queue=queue, payload=b'{"id": 1}')
        later.process_in.FromSeconds(3600)
        now = task_pb2.TaskSpec(type="report.render", queue=queue, payload=b'{"id": 1}')
        specs = [later] * (per_queue // 10) + [now] * (per_queue - per_queue // 10)
        for start in range(0, len(specs), BATCH):
            async with semaphore:
                await stub.EnqueueBatch(pb.EnqueueBatchRequest(tasks=specs[start:start + BATCH]))

    await asyncio.gather(*(one_queue(n) for n in range(queues)))
    return time.perf_counter() - started


async def settle_some(stub: pb_grpc.BrokerServiceStub, queues: int) -> None:
    """In every queue: lease 3, ack 2, retry 1 in an hour (today's counters, a retry)."""
    semaphore = asyncio.Semaphore(IN_FLIGHT)

    async def one_queue(n: int) -> None:
        async with semaphore:
            leased = (await stub.Lease(pb.LeaseRequest(
                worker_id="bench", queues=[pb.QueueWeight(queue=queue_name(n))], max_tasks=3,
                lease_duration=HOUR))).tasks  # fmt: skip
            refs = [pb.LeaseRef(queue=t.queue, task_id=t.id, lease_token=t.lease_token)
                    for t in leased]
            await stub.Ack(pb.AckRequest(worker_id="bench",
                                         items=[pb.AckItem(lease=r) for r in refs[:2]]))
            await stub.Nack(pb.NackRequest(worker_id="bench", items=[
                pb.NackItem(lease=r, retry_after=HOUR, error="upstream 503",
                            error_type="HTTPError") for r in refs[2:]]))  # fmt: skip

    await asyncio.gather(*(one_queue(n) for n in range(queues)))


async def redis_counters(client: redis.asyncio.Redis) -> tuple[Counter[str], int]:
    """Calls per command so far, and read events processed so far."""
    stats = await client.info("commandstats")
    calls = Counter({name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()})
    reads = int((await client.info("stats"))["total_reads_processed"])
    return calls, reads


def server_ms(response: httpx.Response) -> dict[str, float]:
    """The parts of a Server-Timing header, in ms."""
    parts = {}
    for item in response.headers.get("Server-Timing", "").split(","):
        name, _, duration = item.strip().partition(";dur=")
        if duration:
            parts[name] = float(duration)
    return parts


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def redis_cpu(client: redis.asyncio.Redis) -> float:
    info = await client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def measure(client: redis.asyncio.Redis, url: str, requests: int) -> dict[str, Any]:
    """Timings over ``requests`` GETs of ``url`` and the Redis work of one of them."""
    async with httpx.AsyncClient(timeout=60) as http:
        (await http.get(url)).raise_for_status()  # warm-up: templates compiled
        calls_before, reads_before = await redis_counters(client)
        answer = await http.get(url)
        calls_after, reads_after = await redis_counters(client)
        parts: dict[str, list[float]] = {"total": [], "redis": [], "cpu": [], "wall": []}
        cpu_before = await redis_cpu(client)
        for _ in range(requests):
            started = time.perf_counter()
            answer = await http.get(url)
            wall = (time.perf_counter() - started) * 1000
            answer.raise_for_status()
            timing = server_ms(answer)
            for name in ("total", "redis", "cpu"):
                parts[name].append(timing.get(name, float("nan")))
            parts["wall"].append(wall)
        redis_ms = (await redis_cpu(client) - cpu_before) * 1000 / requests
    calls = calls_after - calls_before
    calls["info"] -= 2  # the two INFO calls of redis_counters itself
    figures: dict[str, Any] = {name: statistics.median(values) for name, values in parts.items()}
    figures.update(p95=percentile(parts["total"], 0.95), cpu_p95=percentile(parts["cpu"], 0.95),
                   redis_cpu=redis_ms, calls=+calls, reads=reads_after - reads_before - 2,
                   bytes=len(answer.content))  # fmt: skip
    return figures


def report(name: str, figures: dict[str, Any], target: bool) -> None:
    verdict = ""
    if target:
        met = figures["total"] < TARGET_MS and figures["p95"] < TARGET_MS
        verdict = f"  -> {'MET' if met else 'MISSED'} (< {TARGET_MS:.0f} ms, wall)"
    print(f"{name}: server wall median {figures['total']:.1f} ms, p95 {figures['p95']:.1f} ms "
          f"(Redis reads {figures['redis']:.1f} ms); broker CPU median {figures['cpu']:.1f} ms, "
          f"p95 {figures['cpu_p95']:.1f} ms; Redis CPU {figures['redis_cpu']:.1f} ms; client "
          f"wall median {figures['wall']:.1f} ms; {figures['bytes'] / 1024:.0f} KiB{verdict}")
    commands = ", ".join(f"{n} {c}" for n, c in sorted(figures["calls"].items()))
    print(f"  Redis per request: {commands}; read events {figures['reads']}")


async def run(args: argparse.Namespace) -> None:
    port = free_port()
    flags = ("--http-listen", f"127.0.0.1:{port}", "--dashboard")
    with running_stack(*flags) as stack:
        client = redis.asyncio.Redis.from_url(stack.redis_url)
        async with grpc.aio.insecure_channel(stack.address) as channel:
            stub = pb_grpc.BrokerServiceStub(channel)
            seconds = await seed(stub, args.queues, args.tasks)
            await settle_some(stub, args.queues)
        held = sum([await client.llen(k) async for k in client.scan_iter("*:pending")])
        memory = (await client.info("memory"))["used_memory_human"]
        print(f"seeded {args.tasks:,} tasks into {args.queues:,} queues with EnqueueBatch in "
              f"{seconds:.1f} s ({args.tasks / seconds:,.0f} tasks/s); {held:,} pending; "
              f"Redis {memory}")
        print(f"load average {os.getloadavg()}")
        base = f"http://127.0.0.1:{port}/"
        report("overview page", await measure(client, base, args.requests), True)
        for days in (7, 90):
            report(f"daily chart data, {days} days", await measure(
                client, f"{base}overview/history?days={days}", args.requests), False)
        print(f"load average {os.getloadavg()}")
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queues", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=20)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
