"""Fire lateness and broker CPU with many schedules firing at once.

Run: ``.venv/bin/python benchmarks/schedules_bench.py`` (starts its own Redis and broker;
``--schedules 10000 --seconds 60`` by default). Creates N ``@every 10s`` schedules, lets them
fire for the given time, then reads every schedule's fire history and reports the lateness of
each fire (fired_at - tick: p50, p99, max), fires per second, and the broker's CPU time per
fire and per second. Target: lateness p99 <= 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import grpc
from broker_bench import broker_pid, cpu_seconds
from harness import running_stack

from leasq.v1 import schedule_service_pb2 as pb
from leasq.v1 import schedule_service_pb2_grpc as pb_grpc

IN_FLIGHT = 32


async def create(stub: pb_grpc.ScheduleServiceStub, count: int, spec: str) -> None:
    names = iter(range(count))

    async def worker() -> None:
        for n in names:
            template = pb.TaskTemplate(type="bench:noop", queue=f"sched{n % 10}")
            await stub.UpsertSchedule(pb.UpsertScheduleRequest(
                schedule=pb.Schedule(name=f"s{n}", spec=spec, template=template)))

    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))


async def lateness(stub: pb_grpc.ScheduleServiceStub, count: int, since_ms: int
                   ) -> list[int]:
    names = iter(range(count))
    late: list[int] = []

    async def worker() -> None:
        for n in names:
            history = await stub.ListScheduleFires(pb.ListScheduleFiresRequest(name=f"s{n}"))
            late.extend(f.fired_at.ToMilliseconds() - f.tick.ToMilliseconds()
                        for f in history.fires
                        if f.status == pb.FIRE_STATUS_FIRED and f.tick.ToMilliseconds() >= since_ms)

    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    return sorted(late)


async def run(count: int, seconds: float, spec: str) -> None:
    with running_stack() as stack:
        pid = broker_pid(stack.workdir)
        async with grpc.aio.insecure_channel(stack.address) as channel:
            stub = pb_grpc.ScheduleServiceStub(channel)
            started = time.perf_counter()
            await create(stub, count, spec)
            print(f"created {count} schedules ({spec}) in {time.perf_counter() - started:.1f} s")
            await asyncio.sleep(11)  # every schedule has fired once: steady state from here
            since_ms = int(time.time() * 1000)
            cpu_before = cpu_seconds(pid)
            await asyncio.sleep(seconds)
            cpu = cpu_seconds(pid) - cpu_before
            late = await lateness(stub, count, since_ms)
    late = [x for x in late if x >= 0]
    fires = len(late)
    print("| schedules | fires | fires/s | lateness p50 | p99 | max | broker CPU |")
    print("|--:|--:|--:|--:|--:|--:|--:|")
    print(f"| {count:,} | {fires:,} | {fires / seconds:,.0f} | "
          f"{statistics.median(late):.0f} ms | {late[int(fires * 0.99) - 1]:.0f} ms | "
          f"{late[-1]:.0f} ms | {cpu / seconds * 100:.0f}% of a core "
          f"({cpu / max(fires, 1) * 1e6:.0f} µs per fire) |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedules", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--spec", default="@every 10s")
    args = parser.parse_args()
    asyncio.run(run(args.schedules, args.seconds, args.spec))


if __name__ == "__main__":
    main()
