"""Leasq against Celery, RQ, Dramatiq, arq, taskiq and Huey on one private Redis.

Run: ``.venv/bin/python benchmarks/compare.py`` (or ``make bench``). Per system and run:
enqueue throughput (one-task API; bulk API where there is one), drain of N pending no-op
tasks by one worker process, idle enqueue -> handler start latency; then crash recovery for
all systems at once (each in its own Redis database: the scenario mostly waits). Each figure
is the median of ``--runs`` runs. Results go to ``benchmarks/results/compare.json``; render
them with ``benchmarks/report.py``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import machine
from crash import crash_runs
from grpc_floor import unary_calls_per_second
from harness import private_redis
from peers import SYSTEMS
from peers.base import PeerInfo
from scenarios import Plan, one_run
from session import HERE, BenchError, Session

RESULTS = HERE / "results"
SCENARIOS = ("single", "bulk", "drain", "latency", "crash")
FIGURES = ("single", "bulk", "drain", "p50", "p99")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def db_url(base: str, index: int) -> str:
    return base.rsplit("/", 1)[0] + f"/{index}"


def versions(peer: PeerInfo, url: str, workdir: Path) -> dict[str, str]:
    try:
        return Session(peer, url, workdir).drive("versions", *peer.distributions)
    except BenchError as err:
        return {"error": str(err)}  # type: ignore[dict-item]


def medians(runs: list[dict[str, Any]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key in FIGURES:
        values = [run[key] for run in runs if key in run]
        if values:
            out[key] = statistics.median(values)
    return out


def throughput(peer: PeerInfo, url: str, workdir: Path, plan: Plan, runs: int) -> list[Any]:
    results = []
    for number in range(1, runs + 1):
        figures = one_run(peer, url, workdir, plan)
        shown = {k: round(v, 2) for k, v in figures.items() if isinstance(v, float)}
        log(f"{peer.name} run {number}: {shown} {figures.get('errors', '')}")
        results.append(figures)
    return results


def settings(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "n": args.n,
        "runs": args.runs,
        "probes": args.probes,
        "gap_ms": args.gap * 1000,
        "crash_cap_s": args.crash_cap,
        "scenarios": list(args.scenarios),
        "quick": args.quick,
    }


def system_entry(peer: PeerInfo, url: str, workdir: Path, plan: Plan, runs: int) -> Any:
    entry: dict[str, Any] = {
        "versions": versions(peer, url, workdir),
        "worker": peer.worker,
        "single_api": peer.single_api,
        "bulk_api": peer.bulk_api,
        "recovery": peer.recovery,
    }
    if plan.scenarios:
        entry["runs"] = throughput(peer, url, workdir, plan, runs)
        entry["median"] = medians(entry["runs"])
    return entry


def crash_phase(peers: list[PeerInfo], urls: dict[str, str], workdir: Path,
                args: argparse.Namespace, systems: dict[str, Any]) -> None:  # fmt: skip
    """Every system's crash runs at once: the scenario mostly waits for leases to expire."""
    log(f"crash recovery, all systems at once, cap {args.crash_cap:.0f} s")
    with ThreadPoolExecutor(len(peers)) as pool:
        futures = {
            peer.name: pool.submit(
                crash_runs, peer, urls[peer.name], workdir, args.runs, args.crash_cap
            )
            for peer in peers
        }
        for name, future in futures.items():
            systems[name]["crash"] = future.result()
            log(f"{name} crash: {systems[name]['crash']}")


def run_all(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    peers = [SYSTEMS[name] for name in args.systems]
    plan = Plan(args.n, args.probes, args.gap, frozenset(args.scenarios) - {"crash"})
    with private_redis(workdir) as base:
        report: dict[str, Any] = {"settings": settings(args), "machine": machine.facts(base),
                                  "load_before": machine.load(), "systems": {}}  # fmt: skip
        floor = [unary_calls_per_second(min(args.n, 10_000)) for _ in range(args.runs)]
        report["grpc_unary_floor"] = statistics.median(floor)
        log(f"bare grpc.aio unary calls, 64 in flight: {report['grpc_unary_floor']:,.0f}/s")
        urls = {peer.name: db_url(base, index) for index, peer in enumerate(peers, start=1)}
        for peer in peers:
            entry = system_entry(peer, urls[peer.name], workdir, plan, args.runs)
            report["systems"][peer.name] = entry
        if "crash" in args.scenarios:
            crash_phase(peers, urls, workdir, args, report["systems"])
        report["load_after"] = machine.load()
    return report


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="tasks per throughput scenario")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (median taken)")
    parser.add_argument("--systems", nargs="+", choices=list(SYSTEMS), default=list(SYSTEMS))
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--probes", type=int, default=500, help="latency probes per run")
    parser.add_argument("--gap", type=float, default=0.01, help="seconds between probes")
    parser.add_argument(
        "--crash-cap",
        type=float,
        default=120.0,
        help="seconds to wait for a crashed task to start again",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: N=1,000, 1 run, 100 probes, crash cap 20 s"
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.runs, args.probes, args.crash_cap = 1_000, 1, 100, 20.0
    args.out = args.out or RESULTS / ("compare-quick.json" if args.quick else "compare.json")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="leasq-compare-") as workdir:
        report = run_all(args, Path(workdir))
    report["duration_s"] = round(time.monotonic() - started)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    log(f"wrote {args.out} in {report['duration_s']} s")


if __name__ == "__main__":
    main()
