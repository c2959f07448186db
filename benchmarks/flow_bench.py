"""Flow control under load: a 500/s rate limit and max active 5 with 3 workers on 2 brokers,
Lease latency with 10,000 distinct concurrency keys pending against none, and the drain of a
queue without limits (the broker_bench scenario, to set beside its figure from before flow
control).

Run: ``.venv/bin/python benchmarks/flow_bench.py`` (starts its own Redis and two brokers;
``--only rate|active|keys|drain``; ``--seconds`` sets the rate window, default 30).
Targets: 490-510 leases/s over the window; max active never above 5; Lease p50 with 10,000
keys within 1.5x of no keys; drain within 5% of before.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import redis.asyncio
import structlog
from broker_bench import broker_pid, drain, measured
from harness import broker_on, private_redis

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import broker_service_pb2_grpc as pb_grpc
from leasq.v1 import inspect_service_pb2 as ipb
from leasq.v1 import inspect_service_pb2_grpc as ipb_grpc
from leasq.v1 import task_pb2
from leasq_worker import Registry, Task, Worker

PAYLOAD = b'{"user_id": 12345}'


@contextlib.contextmanager
def two_brokers() -> Iterator[tuple[str, list[str], Path]]:
    """Redis and two brokers on it: (redis url, broker addresses, first broker's workdir)."""
    root = Path(tempfile.mkdtemp(prefix="leasq-flow-bench-"))
    (root / "a").mkdir()
    (root / "b").mkdir()
    with (private_redis(root) as url, broker_on(url, root / "a") as first,
          broker_on(url, root / "b") as second):
        yield url, [first, second], root / "a"


async def enqueue(stub: pb_grpc.BrokerServiceStub, queue: str, n: int,
                  keys: bool = False) -> None:
    for start in range(0, n, 1000):
        specs = [task_pb2.TaskSpec(type="noop", queue=queue, payload=PAYLOAD,
                                   concurrency_key=f"k{start + i}" if keys else "")
                 for i in range(min(1000, n - start))]
        await stub.EnqueueBatch(pb.EnqueueBatchRequest(tasks=specs))


async def settings(address: str, queue: str, **fields: object) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        await ipb_grpc.InspectServiceStub(channel).UpdateQueueSettings(
            ipb.UpdateQueueSettingsRequest(queue=queue, settings=ipb.QueueSettings(**fields)))


async def run_workers(addresses: list[str], queue: str, registry: Registry,
                      until: asyncio.Event) -> None:
    """3 workers of 10 slots, on the brokers in turn, until ``until`` is set."""
    workers = [Worker(registry, broker=addresses[i % 2], queues=[queue], concurrency=10,
                      handle_signals=False, poll_wait=2.0) for i in range(3)]
    runs = [asyncio.create_task(w.run()) for w in workers]
    await until.wait()
    for worker in workers:
        worker.stop()
    await asyncio.gather(*runs)


async def rate_limit(seconds: float) -> None:
    rate, queue = 500.0, "rated"
    with two_brokers() as (_, addresses, _):
        await settings(addresses[0], queue, rate_limit=ipb.RateLimit(per_second=rate))
        async with grpc.aio.insecure_channel(addresses[0]) as channel:
            await enqueue(pb_grpc.BrokerServiceStub(channel), queue,
                          int(rate * (seconds + 10)))
        starts: list[float] = []
        enough = asyncio.Event()
        registry = Registry()

        @registry.handler("noop")
        async def noop(task: Task) -> None:
            starts.append(time.monotonic())
            if starts[-1] - starts[0] > seconds + 4:
                enough.set()

        await run_workers(addresses, queue, registry, enough)
    begin = starts[0] + 2  # past the initial burst
    window = [t for t in starts if begin <= t < begin + seconds]
    per_second = [sum(1 for t in window if begin + s <= t < begin + s + 1)
                  for s in range(int(seconds))]
    print(f"rate limit 500/s, 3 workers on 2 brokers: {len(window) / seconds:.1f} leases/s "
          f"over {seconds:g} s (per-second min {min(per_second)}, max {max(per_second)}; "
          "target 490-510)")


async def max_active(n: int) -> None:
    limit, queue = 5, "capped"
    with two_brokers() as (url, addresses, _):
        await settings(addresses[0], queue, max_active=limit)
        async with grpc.aio.insecure_channel(addresses[0]) as channel:
            await enqueue(pb_grpc.BrokerServiceStub(channel), queue, n)
        client = redis.asyncio.Redis.from_url(url)
        observed: list[int] = []
        running = 0
        most_running = 0
        done = asyncio.Event()
        registry = Registry()

        @registry.handler("noop")
        async def noop(task: Task) -> None:
            nonlocal running, most_running
            running += 1
            most_running = max(most_running, running)
            observed.append(await client.zcard(f"leasq:{{{queue}}}:active"))
            await asyncio.sleep(0.005)
            running -= 1
            if len(observed) >= n:
                done.set()

        started = time.perf_counter()
        await run_workers(addresses, queue, registry, done)
        elapsed = time.perf_counter() - started
        await client.aclose()
    print(f"max active 5, 3 workers (30 slots) on 2 brokers, {n} tasks of 5 ms: observed "
          f"maximum {max(observed)} ACTIVE at a start (handlers at once: {most_running}), "
          f"{n / elapsed:,.0f} tasks/s")


async def lease_latency(n: int, samples: int) -> None:
    async def p50(stub: pb_grpc.BrokerServiceStub, queue: str) -> float:
        lease = pb.LeaseRequest(worker_id="bench", queues=[pb.QueueWeight(queue=queue)],
                                max_tasks=1)
        times = []
        for _ in range(samples):
            started = time.perf_counter()
            got = await stub.Lease(lease)
            times.append((time.perf_counter() - started) * 1000)
            assert got.tasks
        return statistics.median(times)

    with two_brokers() as (_, addresses, _):
        async with grpc.aio.insecure_channel(addresses[0]) as channel:
            stub = pb_grpc.BrokerServiceStub(channel)
            await enqueue(stub, "plain", n)
            await enqueue(stub, "keyed", n, keys=True)
            rounds = [(await p50(stub, "plain"), await p50(stub, "keyed")) for _ in range(3)]
    plain = statistics.median(r[0] for r in rounds)
    keyed = statistics.median(r[1] for r in rounds)
    print(f"Lease(1) p50, {n:,} pending: no keys {plain:.3f} ms, {n:,} distinct keys "
          f"{keyed:.3f} ms: ratio {keyed / plain:.2f} (target <= 1.5; rounds {rounds})")


async def unlimited_drain(n: int) -> None:
    with two_brokers() as (_, addresses, workdir):
        pid = broker_pid(workdir)
        async with grpc.aio.insecure_channel(addresses[0]) as channel:
            stub = pb_grpc.BrokerServiceStub(channel)
            await enqueue(stub, "drain", n)
            rate, cpu = await measured(pid, n, drain(stub, n, "drain", 4))
    print(f"drain of a queue without limits, Lease(100) + batched Ack: {rate:,.0f} tasks/s, "
          f"broker CPU {cpu:.0f} us/task (compare: broker_bench.py before flow control)")


async def main(only: str, seconds: float) -> None:
    # The in-process workers log every task at debug level: keep the output to the figures.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    print(f"load average before: {os.getloadavg()}")
    if only in ("", "rate"):
        await rate_limit(seconds)
    if only in ("", "active"):
        await max_active(3000)
    if only in ("", "keys"):
        await lease_latency(10_000, 1000)
    if only in ("", "drain"):
        await unlimited_drain(100_000)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=["rate", "active", "keys", "drain"], default="")
    parser.add_argument("--seconds", type=float, default=30.0)
    options = parser.parse_args()
    asyncio.run(main(options.only, options.seconds))
