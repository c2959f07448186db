"""The dashboard's overview with 1,000 queues holding 1,000,000 tasks: server render time and
Redis work per page.

Run: ``.venv/bin/python benchmarks/dashboard_bench.py`` (``--queues 1000 --tasks 1000000
--requests 20``). Starts its own Redis (no persistence) and a broker with ``--dashboard``;
``--redis-url`` measures on a Redis of your own instead (seeded first when it holds no queue, so
that repeated runs skip the seeding).

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
- cost per request, beyond the broker's background work: over the requests, the deltas of
  ``INFO commandstats`` (commands by name), of ``total_reads_processed`` (read events Redis
  handled: at least one per round trip; a pipeline of 100s of KB arrives in several reads, so
  this bounds round trips from above), of Redis' CPU (``INFO cpu``) and of the broker process'
  CPU (``/proc``), minus the same deltas over an idle window as long (the broker's background
  loops call Redis all the time with 1,000 queues), divided by the number of requests.

Target: the overview renders in under 300 ms on the server (median and p95).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import redis.asyncio
from broker_bench import broker_pid, cpu_seconds
from google.protobuf.duration_pb2 import Duration
from harness import Stack, broker_on, free_port, running_stack

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


@dataclass
class Reading:
    """Cumulative counters of Redis and the broker at one instant."""

    calls: Counter[str]
    reads: int
    redis_cpu: float
    broker_cpu: float
    at: float

    def minus(self, other: Reading) -> Reading:
        return Reading(self.calls - other.calls, self.reads - other.reads,
                       self.redis_cpu - other.redis_cpu, self.broker_cpu - other.broker_cpu,
                       self.at - other.at)  # fmt: skip


async def reading(client: redis.asyncio.Redis, pid: int) -> Reading:
    """Calls per command, read events, Redis and broker CPU seconds so far. Its own three INFO
    calls are left out of the counts."""
    stats = await client.info("commandstats")
    calls = Counter({name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()})
    info = await client.info("stats")
    cpu = await client.info("cpu")
    calls["info"] -= 3
    return Reading(calls, int(info["total_reads_processed"]) - 3,
                   float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]), cpu_seconds(pid),
                   time.perf_counter())  # fmt: skip


async def per_request(client: redis.asyncio.Redis, pid: int, loop: Reading, requests: int
                      ) -> Reading:
    """What ``requests`` requests cost beyond the broker's background work: the loop's deltas
    minus those of an idle window as long as the loop (the broker's background loops keep
    calling Redis meanwhile), per request."""
    start = await reading(client, pid)
    await asyncio.sleep(loop.at)
    idle = (await reading(client, pid)).minus(start)
    scale = loop.at / idle.at  # the idle window is a little longer than asked
    calls = Counter({name: round((n - idle.calls[name] * scale) / requests)
                     for name, n in loop.calls.items()})  # fmt: skip
    return Reading(
        +calls, round((loop.reads - idle.reads * scale) / requests),
        (loop.redis_cpu - idle.redis_cpu * scale) / requests,
        (loop.broker_cpu - idle.broker_cpu * scale) / requests, loop.at / requests)


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


async def measure(client: redis.asyncio.Redis, pid: int, url: str, requests: int
                  ) -> dict[str, Any]:
    """Timings over ``requests`` GETs of ``url``, and what one costs Redis and the broker."""
    parts: dict[str, list[float]] = {"total": [], "redis": [], "wall": []}
    async with httpx.AsyncClient(timeout=60) as http:
        (await http.get(url)).raise_for_status()  # warm-up: templates compiled
        before = await reading(client, pid)
        for _ in range(requests):
            started = time.perf_counter()
            answer = await http.get(url)
            parts["wall"].append((time.perf_counter() - started) * 1000)
            answer.raise_for_status()
            timing = server_ms(answer)
            for name in ("total", "redis"):
                parts[name].append(timing.get(name, float("nan")))
        loop = (await reading(client, pid)).minus(before)
    cost = await per_request(client, pid, loop, requests)
    figures: dict[str, Any] = {name: statistics.median(values) for name, values in parts.items()}
    figures.update(p95=percentile(parts["total"], 0.95), cost=cost, bytes=len(answer.content))
    return figures


def report(name: str, figures: dict[str, Any], target: bool) -> None:
    verdict = ""
    if target:
        met = figures["total"] < TARGET_MS and figures["p95"] < TARGET_MS
        verdict = f"  -> {'MET' if met else 'MISSED'} (< {TARGET_MS:.0f} ms, wall)"
    cost: Reading = figures["cost"]
    print(f"{name}: server wall median {figures['total']:.1f} ms, p95 {figures['p95']:.1f} ms "
          f"(Redis reads {figures['redis']:.1f} ms); client wall median "
          f"{figures['wall']:.1f} ms; {figures['bytes'] / 1024:.0f} KiB{verdict}")
    commands = ", ".join(f"{n} {c}" for n, c in sorted(cost.calls.items()))
    print(f"  per request, background work subtracted: broker CPU {cost.broker_cpu * 1000:.1f} "
          f"ms, Redis CPU {cost.redis_cpu * 1000:.1f} ms; Redis read events {cost.reads}; "
          f"commands: {commands}")


@contextlib.contextmanager
def stack_on(redis_url: str | None, *flags: str) -> Iterator[Stack]:
    """A fresh Redis and broker, or a broker on the Redis at ``redis_url``."""
    if redis_url is None:
        with running_stack(*flags) as stack:
            yield stack
        return
    workdir = Path(tempfile.mkdtemp(prefix="leasq-bench-"))
    try:
        with broker_on(redis_url, workdir, *flags) as address:
            yield Stack(redis_url, address, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def run(args: argparse.Namespace) -> None:
    port = free_port()
    with stack_on(args.redis_url, "--http-listen", f"127.0.0.1:{port}", "--dashboard") as stack:
        client = redis.asyncio.Redis.from_url(stack.redis_url)
        if not await client.exists("leasq:queues"):
            async with grpc.aio.insecure_channel(stack.address) as channel:
                stub = pb_grpc.BrokerServiceStub(channel)
                seconds = await seed(stub, args.queues, args.tasks)
                await settle_some(stub, args.queues)
            print(f"seeded {args.tasks:,} tasks into {args.queues:,} queues with EnqueueBatch "
                  f"in {seconds:.1f} s ({args.tasks / seconds:,.0f} tasks/s)")
        held = sum([await client.llen(k) async for k in client.scan_iter("*:pending")])
        memory = (await client.info("memory"))["used_memory_human"]
        print(f"{await client.scard('leasq:queues'):,} queues, {held:,} pending tasks; Redis "
              f"{memory}; load average {os.getloadavg()}")
        base = f"http://127.0.0.1:{port}/"
        pid = broker_pid(stack.workdir)
        report("overview page", await measure(client, pid, base, args.requests), True)
        for days in (7, 90):
            report(f"daily chart data, {days} days", await measure(
                client, pid, f"{base}overview/history?days={days}", args.requests), False)
        print(f"load average {os.getloadavg()}")
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queues", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--redis-url", help="measure on this Redis (seeded first if it holds "
                        "no queue) instead of a private one")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
