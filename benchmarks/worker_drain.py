"""One worker process with no-op async handlers: drain rate and idle enqueue -> start latency.

Run: ``.venv/bin/python benchmarks/worker_drain.py`` (starts its own Redis, broker and worker).
Targets on a 2-core machine: drain 50,000 pending tasks at >= 10,000 tasks/s; idle enqueue ->
handler start p50 <= 2 ms, p99 <= 10 ms. The worker is the real ``python -m leasq_worker``
command; the drain rate is measured inside it, from the first handler start to the last.
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

import grpc
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
    """Enqueue one latency probe at a time, ``gap`` apart, so the worker is idle at each."""
    for _ in range(samples):
        await asyncio.sleep(gap)
        payload = repr(time.time()).encode()
        spec = task_pb2.TaskSpec(type="bench:latency", queue="latency", payload=payload)
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
        "--broker", stack.address, "--queue", "drain", "--queue", "latency",
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


async def run(args: argparse.Namespace) -> None:
    with running_stack() as stack:
        result = stack.workdir / "result.json"
        async with grpc.aio.insecure_channel(stack.address) as channel:
            stub = pb_grpc.BrokerServiceStub(channel)
            await fill(stub, args.tasks)
            worker = start_worker(stack, args, result)
            try:
                drained = await asyncio.to_thread(wait_for, result, worker, 120)
                await trickle(stub, args.samples, args.gap)
                latency_file = Path(str(result) + ".latency")
                delays = await asyncio.to_thread(wait_for, latency_file, worker, 60)
            finally:
                worker.terminate()
                worker.wait(30)
    report(args, drained, delays)  # type: ignore[arg-type]


def report(args: argparse.Namespace, drained: dict[str, float], delays: list[float]) -> None:
    rate = drained["count"] / drained["seconds"]
    ms = sorted(d * 1000 for d in delays)
    p50 = statistics.median(ms)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    rows = [
        (f"drain {args.tasks:,} pending (concurrency {args.concurrency})",
         f"{rate:,.0f} tasks/s", ">= 10,000 tasks/s"),
        ("worker CPU per drained task", f"{drained['cpu'] / drained['count'] * 1e6:.0f} us", ""),
        ("idle enqueue -> handler start p50", f"{p50:.2f} ms", "<= 2 ms"),
        ("idle enqueue -> handler start p99", f"{p99:.2f} ms", "<= 10 ms"),
    ]  # fmt: skip
    width = max(len(row[0]) for row in rows)
    print(f"{'measure':<{width}}  {'result':>16}  target")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>16}  {target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=50_000)
    parser.add_argument("--concurrency", type=int, default=300)
    parser.add_argument("--samples", type=int, default=500, help="latency probes")
    parser.add_argument("--profile", default="", help="write a cProfile of the worker here")
    parser.add_argument("--gap", type=float, default=0.01, help="seconds between probes")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
