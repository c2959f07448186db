"""The reliability table: every fault scenario of tests/faults, with more tasks, as markdown.

    .venv/bin/python -m benchmarks.fault_table                 # 2,000 tasks per scenario
    .venv/bin/python -m benchmarks.fault_table --tasks 500 --only "kill -9 worker"

The scenarios are the fault suite's own (``tests/faults/fault_scenarios.py``): real Redis,
broker and worker processes, one fault mid-drain. Prints one row per scenario, then the
failed checks and notes, if any; exits 1 when a scenario lost a task or repeated one that was
not in flight at the fault. Logs stay in the printed directory.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests")]  # the scenarios and broker_process live beside the tests

from faults.fault_scenarios import SCENARIOS, FaultResult, Size, run  # noqa: E402

HEADER = ("| scenario | confirmed | completed | lost | duplicated | in flight at the fault |\n"
          "|---|--:|--:|--:|--:|--:|")  # fmt: skip


def _lost(result: FaultResult) -> str:
    if result.lost is None:
        return "n/a (data loss)"
    if result.lost and result.stranded:
        return f"**{result.lost}** ({result.stranded} still queued)"
    return f"**{result.lost}**" if result.lost else "0"


def _duplicated(result: FaultResult) -> str:
    if result.unexpected_duplicates:
        return f"**{result.duplicated}** ({len(result.unexpected_duplicates)} not in flight)"
    return str(result.duplicated)


def row(result: FaultResult) -> str:
    return (f"| {result.scenario} | {result.confirmed:,} | {result.completed:,} | "
            f"{_lost(result)} | {_duplicated(result)} | {result.in_flight:,} |")  # fmt: skip


def remarks(results: Sequence[FaultResult]) -> list[str]:
    lines = []
    for result in results:
        failed = [check for check, passed in result.checks.items() if not passed]
        passed = [check for check, ok in result.checks.items() if ok]
        if failed:
            lines.append(f"- {result.scenario}: failed: {', '.join(failed)}")
        elif passed and result.lost is None:
            lines.append(f"- {result.scenario}: {', '.join(passed)}")
        lines += [f"  - {note}" for note in result.notes[:3]]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000, help="tasks per scenario")
    parser.add_argument("--concurrency", type=int, default=8, help="slots per worker process")
    parser.add_argument("--only", action="append", choices=list(SCENARIOS), help="repeatable")
    args = parser.parse_args(argv)
    size = Size(tasks=args.tasks, concurrency=args.concurrency, recovery=60 + args.tasks / 50)
    workdir = Path(tempfile.mkdtemp(prefix="leasq-faults-"))
    results = []
    for index, name in enumerate(args.only or SCENARIOS):
        print(f"running: {name} ...", file=sys.stderr, flush=True)
        results.append(run(name, workdir / f"scenario-{index}", size))
    print(f"{args.tasks:,} tasks per scenario, 2 worker processes x {args.concurrency} slots, "
          f"2 s leases; logs in {workdir}\n")  # fmt: skip
    print("\n".join([HEADER, *map(row, results), "", *remarks(results)]))
    return 0 if all(result.ok for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
