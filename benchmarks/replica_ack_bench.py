"""Cost of ``--redis-min-replicas-ack 1``: the broker_bench scenarios against a primary with one
replica, with the knob off and on, alternating, several rounds.

Run: ``cd benchmarks && ../.venv/bin/python replica_ack_bench.py [--rounds 3] [--scale 0.5]``.
Prints tasks/s and broker CPU per task for each scenario and setting, and the primary's CPU
per task (``INFO cpu``), which WAIT adds to as well. Each round starts a fresh broker on the
same Redis pair; both settings run in the same conditions, one after the other.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import redis
from broker_bench import batch_enqueue, broker_pid, drain, measured, single_enqueue, task
from harness import broker_on, free_port, private_redis

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import broker_service_pb2_grpc as pb_grpc


@contextlib.contextmanager
def replica_of(primary_url: str, workdir: Path) -> Iterator[None]:
    """A redis-server replicating ``primary_url``, in sync when the block starts."""
    port = free_port()
    primary_port = primary_url.rsplit(":", 1)[1].split("/")[0]
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(workdir), "--replicaof", "127.0.0.1", primary_port],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        client = redis.Redis(port=port)
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(redis.RedisError):
                if client.info("replication").get("master_link_status") == "up":
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("the replica did not sync")
            time.sleep(0.05)
        yield
    finally:
        process.terminate()
        process.wait(10)


def round_trips(url: str, n: int = 2000) -> tuple[float, float]:
    """Median microseconds of one write round trip (SET in a pipeline) without and with a
    ``WAIT 1`` after it: what the knob adds to every call, without the broker's noise."""
    client = redis.Redis.from_url(url)
    timings: tuple[list[float], list[float]] = ([], [])
    for i in range(2 * n):
        pipe = client.pipeline(transaction=False)
        pipe.set("leasq-bench:wait", i)
        if i % 2:
            pipe.execute_command("WAIT", 1, 1000)
        started = time.perf_counter()
        pipe.execute()
        timings[i % 2].append((time.perf_counter() - started) * 1e6)
    client.delete("leasq-bench:wait")
    return statistics.median(timings[0]), statistics.median(timings[1])


def redis_cpu(url: str) -> float:
    info = redis.Redis.from_url(url).info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


Figures = tuple[float, float, float]


async def scenarios(address: str, workdir: Path, url: str, scale: float) -> dict[str, Figures]:
    """{scenario: (tasks/s, broker us/task, redis us/task)}."""
    pid = broker_pid(workdir)
    out: dict[str, Figures] = {}
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.BrokerServiceStub(channel)
        await stub.Enqueue(pb.EnqueueRequest(task=task("warmup")))
        n_single, n_batch = int(10_000 * scale), int(50_000 * scale)
        runs = {
            "Enqueue, 64 in flight": (n_single, lambda: single_enqueue(stub, n_single, 64)),
            "Enqueue, calls in turn": (n_single // 4,
                                       lambda: single_enqueue(stub, n_single // 4, 1)),
            "EnqueueBatch(500)": (n_batch, lambda: batch_enqueue(stub, n_batch, 500, "drain")),
            "Lease(100) + batched Ack drain": (n_batch, lambda: drain(stub, n_batch, "drain", 4)),
        }  # fmt: skip
        for name, (n, run) in runs.items():
            before = redis_cpu(url)
            rate, broker_us = await measured(pid, n, run())
            out[name] = (rate, broker_us, (redis_cpu(url) - before) / n * 1e6)
    return out


def main(rounds: int, scale: float) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="leasq-ack-bench-"))
    results: dict[tuple[str, str], list[Figures]] = {}
    load_before = os.getloadavg()
    try:
        (workdir / "replica").mkdir()
        with private_redis(workdir) as url, replica_of(url, workdir / "replica"):
            trips = [round_trips(url) for _ in range(rounds)]
            for _ in range(rounds):
                for setting, flags in (("off", ()), ("ack 1", ("--redis-min-replicas-ack", "1"))):
                    redis.Redis.from_url(url).flushall()
                    with broker_on(url, workdir, *flags) as address:
                        got = asyncio.run(scenarios(address, workdir, url, scale))
                    for name, figures in got.items():
                        results.setdefault((name, setting), []).append(figures)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"load average before/after: {load_before} / {os.getloadavg()}; {rounds} rounds, "
          "medians")
    without, with_wait = (statistics.median(t[i] for t in trips) for i in range(2))
    print(f"write round trip p50: {without:.0f} us, with WAIT 1: {with_wait:.0f} us")
    print("| scenario | WAIT | tasks/s | broker CPU us/task | Redis primary CPU us/task |")
    print("|---|---|---|---|---|")
    for (name, setting), runs in results.items():
        rate, broker_us, redis_us = (statistics.median(r[i] for r in runs) for i in range(3))
        print(f"| {name} | {setting} | {rate:,.0f} | {broker_us:.0f} | {redis_us:.1f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply task counts")
    args = parser.parse_args()
    main(args.rounds, args.scale)
