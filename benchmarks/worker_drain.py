"""One worker process with no-op async handlers: drain rate and idle enqueue -> start latency.

Run: ``.venv/bin/python benchmarks/worker_drain.py`` (starts its own Redis, broker and worker).
Targets on a 2-core machine: drain at >= 15,000 tasks/s at concurrency 100 and >= 6,000 tasks/s
at the default 10; idle enqueue -> handler start p50 <= 1.5 ms, p99 <= 5 ms. The worker is the
real ``python -m leasq_worker`` command; the drain rate is measured inside it, from the first
handler start to the last. The worker's, the broker's and Redis' CPU time per drained task are
printed too: on a shared machine they move far less with other load than the rate does.
``--samples 0`` skips the latency probes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import cast

import grpc
import redis
from broker_bench import broker_pid, cpu_seconds
from harness import Stack, running_stack

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import broker_service_pb2_grpc as pb_grpc
from leasq.v1 import task_pb2

HERE = Path(__file__).parent


async def fill(stub: pb_grpc.BrokerServiceStub, count: int) -> None:
    """Enqueue ``count`` no-op tasks on the ``drain`` queue in batches of 1,000."""
    spec = task_pb2.TaskSpec(type="bench:noop", queue="drain", payload=b'{"n": 1}')
    for start in range(0, count, 1000):
        size = min(1000, count - start)
        await stub.EnqueueBatch(pb.EnqueueBatchRequest(tasks=[spec] * size))


async def trickle(stub: pb_grpc.BrokerServiceStub, samples: int, gap: float) -> None:
    """Enqueue one latency probe at a time, ``gap`` apart, so the worker is idle at each. The
    probes go to the drained queue: the worker serves one queue, as in ``compare.py``."""
    for _ in range(samples):
        await asyncio.sleep(gap)
        payload = repr(time.time()).encode()
        spec = task_pb2.TaskSpec(type="bench:latency", queue="drain", payload=payload)
        await stub.Enqueue(pb.EnqueueRequest(task=spec))


def start_worker(stack: Stack, args: argparse.Namespace, result: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        "BENCH_COUNT": str(args.tasks),
        "BENCH_SAMPLES": str(args.samples),
        "BENCH_RESULT": str(result),
    }
    profile = ["-m", "cProfile", "-o", args.profile] if args.profile else []
    command = [
        sys.executable, *profile, "-m", "leasq_worker", "worker_bench_app:registry",
        "--broker", stack.address, "--queue", "drain",
        "--concurrency", str(args.concurrency), "--log-level", "warning",
    ]  # fmt: skip
    return subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL)


def wait_for(path: Path, process: subprocess.Popen[bytes], limit: float) -> object:
    deadline = time.monotonic() + limit
    while not path.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"no result in {path} (worker exit code {process.poll()})")
        time.sleep(0.05)
    return json.loads(path.read_text())


def redis_cpu(url: str) -> float:
    """Redis' own CPU seconds (``INFO cpu``), user + system."""
    with redis.Redis.from_url(url) as client:
        info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def run(args: argparse.Namespace) -> None:
    with running_stack() as stack:
        result = stack.workdir / "result.json"
        pid = broker_pid(stack.workdir)
        async with grpc.aio.insecure_channel(stack.address) as channel:
            stub = pb_grpc.BrokerServiceStub(channel)
            await fill(stub, args.tasks)
            worker = start_worker(stack, args, result)
            try:
                # Broker and Redis CPU from the worker's start to the drain's end: a per-task
                # cost that load from other processes distorts far less than the rate does.
                before = cpu_seconds(pid), redis_cpu(stack.redis_url)
                drained = cast(dict[str, float],
                               await asyncio.to_thread(wait_for, result, worker, 120))
                drained["broker_cpu"] = cpu_seconds(pid) - before[0]
                drained["redis_cpu"] = redis_cpu(stack.redis_url) - before[1]
                delays: list[float] = []
                if args.samples:
                    await trickle(stub, args.samples, args.gap)
                    latency_file = Path(str(result) + ".latency")
                    delays = cast(list[float],
                                  await asyncio.to_thread(wait_for, latency_file, worker, 60))
            finally:
                worker.terminate()
                worker.wait(30)
    report(args, drained, delays)


def report(args: argparse.Namespace, drained: dict[str, float], delays: list[float]) -> None:
    rate = drained["count"] / drained["seconds"]
    per_task = {part: drained[part] / drained["count"] * 1e6
                for part in ("cpu", "broker_cpu", "redis_cpu")}  # fmt: skip
    target = ">= 15,000 tasks/s" if args.concurrency >= 100 else ">= 6,000 tasks/s"
    rows = [
        (f"drain {args.tasks:,} pending (concurrency {args.concurrency})",
         f"{rate:,.0f} tasks/s", target),
        ("worker CPU per drained task", f"{per_task['cpu']:.0f} us", ""),
        ("broker CPU per drained task", f"{per_task['broker_cpu']:.0f} us", ""),
        ("Redis CPU per drained task", f"{per_task['redis_cpu']:.0f} us", ""),
    ]  # fmt: skip
    if delays:
        ms = sorted(d * 1000 for d in delays)
        p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
        rows += [("idle enqueue -> handler start p50", f"{statistics.median(ms):.2f} ms",
                  "<= 1.5 ms"),
                 ("idle enqueue -> handler start p99", f"{p99:.2f} ms", "<= 5 ms")]
    width = max(len(row[0]) for row in rows)
    print(f"{'measure':<{width}}  {'result':>16}  target")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>16}  {target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=50_000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--samples", type=int, default=500, help="latency probes")
    parser.add_argument("--profile", default="", help="write a cProfile of the worker here")
    parser.add_argument("--gap", type=float, default=0.01, help="seconds between probes")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
