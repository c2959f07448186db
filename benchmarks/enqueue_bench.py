"""The one-task enqueue through the SDK: calls in turn, and 64 concurrent callers (coalesced).

Run: ``.venv/bin/python benchmarks/enqueue_bench.py`` (starts its own Redis and broker; part
of ``make bench``, results in ``benchmarks/results/enqueue.json``, rendered by ``report.py``).
A web request handler makes one ``enqueue`` per request and waits for it: "calls in turn" is
that cost, one call at a time. "64 concurrent callers" is many handlers of one process sharing
one client: 64 coroutines on one ``AsyncClient``, or 64 threads on one ``Client``, each making
its calls in turn; the client coalesces what they send at once into ``EnqueueBatch`` calls.
Besides the rate, the table shows the CPU the producer process and the broker spent per task,
which load on the other core distorts far less than rates. Each figure is the median of
``--runs`` runs; the targets of round 2 are printed met or missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from broker_bench import broker_pid, cpu_seconds
from harness import running_stack

from leasq_sdk import AsyncClient, Client

RESULTS = Path(__file__).resolve().parent / "results"
QUEUE = "bench"
CALLERS = 64
#: (scenario, target in tasks/s) of issue 11; None: shown, not a target.
TARGETS: dict[str, int | None] = {
    "AsyncClient, calls in turn": 2_000,
    "Client, calls in turn": 2_000,
    f"AsyncClient, {CALLERS} coroutines": 20_000,
    f"Client, {CALLERS} threads": 20_000,
}


@dataclass(frozen=True)
class Figure:
    """One scenario's run: tasks/s, producer CPU us/task, broker CPU us/task."""

    rate: float
    client_cpu: float
    broker_cpu: float


def _async_run(address: str, n: int, callers: int) -> None:
    async def main() -> None:
        async with AsyncClient(address) as client:
            await client.enqueue("bench:noop", queue="warmup")
            remaining = n

            async def caller() -> None:
                nonlocal remaining
                while remaining > 0:
                    remaining -= 1
                    await client.enqueue("bench:noop", queue=QUEUE)

            await asyncio.gather(*(caller() for _ in range(callers)))

    asyncio.run(main())


def _sync_run(address: str, n: int, callers: int) -> None:
    with Client(address) as client:
        client.enqueue("bench:noop", queue="warmup")
        lock = threading.Lock()
        remaining = [n]

        def caller() -> None:
            while True:
                with lock:
                    if remaining[0] <= 0:
                        return
                    remaining[0] -= 1
                client.enqueue("bench:noop", queue=QUEUE)

        threads = [threading.Thread(target=caller) for _ in range(callers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def measure(pid: int, n: int, run: Callable[[], None]) -> Figure:
    """One timed run; producer CPU is this process's (all threads, gRPC's included)."""
    broker_before, client_before = cpu_seconds(pid), time.process_time()
    started = time.perf_counter()
    run()
    elapsed = time.perf_counter() - started
    return Figure(
        n / elapsed,
        (time.process_time() - client_before) / n * 1e6,
        (cpu_seconds(pid) - broker_before) / n * 1e6,
    )


def scenarios(address: str, n_turn: int, n_many: int) -> dict[str, tuple[int, Callable[[], None]]]:
    return {
        "AsyncClient, calls in turn": (n_turn, lambda: _async_run(address, n_turn, 1)),
        "Client, calls in turn": (n_turn, lambda: _sync_run(address, n_turn, 1)),
        f"AsyncClient, {CALLERS} coroutines": (
            n_many, lambda: _async_run(address, n_many, CALLERS)),
        f"Client, {CALLERS} threads": (n_many, lambda: _sync_run(address, n_many, CALLERS)),
    }  # fmt: skip


def run_all(scale: float, runs: int) -> dict[str, Any]:
    """Every scenario ``runs`` times, interleaved, on one stack; medians per scenario."""
    load_before = os.getloadavg()
    n_turn, n_many = int(3_000 * scale), int(20_000 * scale)
    results: dict[str, list[Figure]] = {}
    with running_stack() as stack:
        pid = broker_pid(stack.workdir)
        plan = scenarios(stack.address, n_turn, n_many)
        for _ in range(runs):
            for name, (n, run) in plan.items():
                results.setdefault(name, []).append(measure(pid, n, run))
    medians = {
        name: {
            "rate": statistics.median(f.rate for f in figures),
            "client_cpu": statistics.median(f.client_cpu for f in figures),
            "broker_cpu": statistics.median(f.broker_cpu for f in figures),
            "target": TARGETS[name],
        }
        for name, figures in results.items()
    }
    return {"runs": runs, "n_turn": n_turn, "n_many": n_many, "load_before": load_before,
            "load_after": os.getloadavg(), "scenarios": medians}  # fmt: skip


def table(report: dict[str, Any]) -> list[str]:
    """The results as markdown: rate, SDK and broker CPU per task, target met or missed."""
    lines = [
        f"Medians of {report['runs']} runs; {report['n_turn']:,} calls in turn and "
        f"{report['n_many']:,} concurrent calls per run; load average before / after: "
        f"{_load(report['load_before'])} / {_load(report['load_after'])}.",
        "",
        "| one-task enqueue through the SDK | tasks/s | SDK CPU us/task | broker CPU us/task "
        "| target |",
        "|---|--:|--:|--:|---|",
    ]
    for name, row in report["scenarios"].items():
        target = row["target"]
        verdict = "-" if target is None else (
            f">= {target:,}: {'met' if row['rate'] >= target else '**missed**'}")
        lines.append(f"| {name} | {row['rate']:,.0f} | {row['client_cpu']:.0f} | "
                     f"{row['broker_cpu']:.0f} | {verdict} |")  # fmt: skip
    return lines


def section(path: Path) -> str:
    """The docs section of a saved run (empty when there is none), for ``report.py``."""
    if not path.exists():
        return ""
    report = json.loads(path.read_text())
    intro = ("## One-task enqueue through the SDK\n\nFrom `benchmarks/enqueue_bench.py`: "
             "one private Redis and broker, the SDK as producer, no worker. \"In turn\": one "
             "call at a time, each awaited (a request handler). \"64 coroutines / threads\": "
             "64 callers sharing one client, whose concurrent calls are coalesced into "
             "EnqueueBatch calls ([sdk-enqueue.md](sdk-enqueue.md)).\n")  # fmt: skip
    return "\n" + intro + "\n" + "\n".join(table(report)) + "\n"


def _load(values: list[float]) -> str:
    return " ".join(f"{v:.2f}" for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply task counts")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (median taken)")
    parser.add_argument("--quick", action="store_true", help="smoke run: scale 0.1, 1 run")
    args = parser.parse_args()
    if args.quick:
        args.scale, args.runs = 0.1, 1
    report = run_all(args.scale, args.runs)
    out = RESULTS / ("enqueue-quick.json" if args.quick else "enqueue.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print("\n".join(table(report)))


if __name__ == "__main__":
    main()
