"""Renders the comparison and the scale curves: markdown to stdout and docs/benchmarks.md,
PNG charts to docs/img/. ``--quick`` renders the smoke results into build/bench-quick/ so that
a smoke run never overwrites the published figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

import charts
from enqueue_bench import section
from targets import target_rows

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    text = f"{value:,.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"
    return text + unit


def recovery(crash: dict[str, Any] | None) -> tuple[float | None, str]:
    """The median recovery and how to show it: a number, "none in N s", or the error."""
    if not crash:
        return None, "-"
    times = crash.get("times", [])
    if crash.get("error") and not times:
        return None, "error"
    if not times or any(t is None for t in times):
        return None, f"none in {crash['cap']:.0f} s"
    value = statistics.median(times)
    return value, f"{value:.1f} s"


def system_rows(compare: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name, entry in compare["systems"].items():
        versions = entry.get("versions", {})
        main = next(iter(versions.values()), "?") if "error" not in versions else "?"
        row: dict[str, Any] = {"name": name, "version": main, **entry.get("median", {})}
        row["recovery"], row["recovery_text"] = recovery(entry.get("crash"))
        row["entry"] = entry
        rows.append(row)
    return rows


def results_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| system | version | enqueue, one-task API (tasks/s) | enqueue, bulk API "
        "(tasks/s) | drain, 1 worker process (tasks/s) | idle latency p50 / p99 (ms) | "
        "crash recovery |",
        "|---|---|--:|--:|--:|--:|--:|",
    ]
    for row in rows:
        bulk = fmt(row.get("bulk")) if row["entry"].get("bulk_api") else "no bulk API"
        latency = f"{fmt(row.get('p50'))} / {fmt(row.get('p99'))}"
        lines.append(
            f"| **{row['name']}** | {row['version']} | {fmt(row.get('single'))} | "
            f"{bulk} | {fmt(row.get('drain'))} | {latency} | {row['recovery_text']} |"
        )
    return lines


def settings_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| system | packages | worker (one process) | one-task API | bulk API | "
        "recovery after kill -9 (documented) |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        entry = row["entry"]
        packages = ", ".join(f"{k} {v}" for k, v in entry.get("versions", {}).items())
        lines.append(
            f"| {row['name']} | {packages} | {entry['worker']} | {entry['single_api']} "
            f"| {entry['bulk_api'] or 'none'} | {entry['recovery']} |"
        )
    return lines


def errors(rows: list[dict[str, Any]]) -> list[str]:
    found = []
    for row in rows:
        for number, run in enumerate(row["entry"].get("runs", []), start=1):
            if run.get("errors"):
                found.append(f"- {row['name']}, run {number}: {run['errors']}")
        crash = row["entry"].get("crash") or {}
        if crash.get("error"):
            found.append(f"- {row['name']}, crash recovery: {crash['error']}")
    return ["", "Errors during the run:", "", *found] if found else []


def scale_tables(scale: dict[str, Any]) -> list[str]:
    lines = ["| Lease(1) round trip | p50 (ms) | p99 (ms) |", "|---|--:|--:|"]
    for depth, point in scale["depth"]["lease"].items():
        lines.append(
            f"| {int(depth):,} pending in the queue | {point['p50']:.2f} | {point['p99']:.2f} |"
        )
    for count, point in scale["queues"].items():
        lines.append(
            f"| {count} weighted queue(s), 10,000 tasks in all | {point['p50']:.2f} | "
            f"{point['p99']:.2f} |"
        )
    lines += [
        "",
        "| Heartbeat round trip | p50 (ms) | p99 (ms) | p50 per lease (us) |",
        "|---|--:|--:|--:|",
    ]
    for size, point in scale["heartbeat"].items():
        per = point["p50"] * 1000 / int(size)
        lines.append(
            f"| {int(size):,} leases held | {point['p50']:.2f} | {point['p99']:.2f} | {per:,.0f} |"
        )
    memory, default = scale["depth"]["memory"], scale.get("memory_default")
    lines += [
        "",
        f"Redis memory with {memory['tasks']:,} pending tasks of 100-byte payload "
        "(`INFO memory` used_memory delta / N), with `hash-max-listpack-value 1024` as the "
        f"embedded Redis sets it: {memory['bytes_per_task']:.0f} bytes per task, "
        f"**{memory['beyond_payload']:.0f} bytes beyond the payload**.",
    ]
    if default:
        at_default = default["beyond_payload"]
        lines[-1] += (f" At Redis's default `hash-max-listpack-value` of 64: {at_default:.0f} "
                      "bytes beyond the payload")
        if abs(at_default - memory["beyond_payload"]) <= 0.05 * memory["beyond_payload"]:
            lines[-1] += (", the same: a queue's tasks share a few hashes, far bigger than "
                          "any listpack, so the setting makes no difference to them.")
        else:
            lines[-1] += "; set `hash-max-listpack-value 1024` on a Redis you run for Leasq."
    return lines


def header(compare: dict[str, Any], scale: dict[str, Any] | None) -> list[str]:
    m, s = compare["machine"], compare["settings"]
    lines = [
        "# Benchmarks",
        "",
        "Leasq against the Python task queues its users would otherwise pick, every system "
        "on one private `redis-server` (each in its own database, flushed between runs), "
        f"with no-op tasks. Each figure is the median of {s['runs']} run(s); N = {s['n']:,} "
        f"tasks per throughput scenario; {s['probes']} latency probes, one every "
        f"{s['gap_ms']:.0f} ms. Reproduce with `make bench` (about 20 minutes).",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram']} RAM, {m['os']}, Python "
        f"{m['python']}, Redis {m['redis']}. Load average (1, 5, 15 min) before / after: "
        f"{compare['load_before']} / {compare['load_after']}.",
    ]
    if scale:
        lines.append(
            f"Scale run load before / after: {scale['load_before']} / {scale['load_after']}."
        )
    if compare.get("grpc_unary_floor"):
        lines += [
            "",
            "For scale: a bare `grpc.aio` unary call that does no work, 64 in flight between "
            f"two processes, runs at {compare['grpc_unary_floor']:,.0f} calls/s on this "
            "machine: the ceiling of any one-RPC-per-task enqueue in Python.",
        ]
    return lines


METHOD = """## How each figure is measured

- **Enqueue**: one fresh producer process per measurement, connections opened before the
  clock starts. Sync APIs are called one after another (their normal use); asyncio APIs keep
  64 calls in flight. Bulk: the system's own bulk API, where it has one; the tasks it left
  pending are counted.
- **Drain**: N tasks pending, then one worker process starts; time from the first handler
  start to the N-th handler's end. Every handler INCRs a counter on the same Redis (the same
  one round trip per task for every system); the runner waits for exactly N, then checks that
  the counter does not move past N (no task ran twice).
- **Idle latency**: with the worker idle, one probe task every gap; the handler records
  `time.time()` at its start minus the producer's `time.time()` just before the enqueue call.
  The first 10 probes warm up and are not counted.
- **Crash recovery**: worker A takes a task that hangs; worker B is started and proven ready
  (it ran a probe); then A's whole process group gets `kill -9` and the clock runs until the
  task starts on B. All systems run this scenario at the same time, each on its own database.
- Every worker logs at WARNING (per-task INFO logs cost several peers 6-20%), on its system's
  documented defaults otherwise; concurrency is in the settings table. Handlers of asyncio
  workers use `redis.asyncio`, the others redis-py's sync client, as real handlers would.
- One `redis-server` (no persistence) serves every system, each in a database of its own that
  is flushed before each run; Leasq's broker is restarted with each run."""


def notes() -> list[str]:
    """The hand-written analysis of the targets (benchmarks/notes.md), kept across runs."""
    path = ROOT / "benchmarks" / "notes.md"
    return ["", *path.read_text().strip().splitlines()] if path.exists() else []


def scale_section(scale: dict[str, Any], img: str) -> list[str]:
    return [
        "",
        "## Leasq at scale",
        "",
        f"Raw gRPC stubs, one call at a time, {scale['samples']} Lease calls per point, each "
        "leased task acked afterwards (untimed); 100-byte payloads.",
        "",
        *scale_tables(scale),
        "",
        f"![Scale curves]({img}/scale-curves.png)",
    ]


def render(compare: dict[str, Any], scale: dict[str, Any] | None, img: str) -> str:
    rows = system_rows(compare)
    cap = compare["settings"]["crash_cap_s"]
    parts = [
        *header(compare, scale),
        "",
        "## Results",
        "",
        *results_table(rows),
        "",
        f'Crash recovery waits at most {cap:.0f} s after the kill; "none in {cap:.0f} s" means '
        "the task had not started again by then (the settings table says what each system "
        "documents).",
        "",
        f"![Comparison]({img}/bench-overview.png)",
        "",
        "## Leasq's targets",
        "",
        *target_rows(rows, scale),
        *notes(),
        "",
        "## Settings",
        "",
        *settings_table(rows),
        *errors(rows),
        "",
        METHOD,
        *(scale_section(scale, img) if scale else []),
    ]
    return "\n".join(parts) + "\n"


README_START = "<!-- benchmarks:start -->"
README_END = "<!-- benchmarks:end -->"


def update_readme(compare: dict[str, Any]) -> None:
    """Replace the README's headline block (between its markers) with the new results."""
    readme = ROOT / "README.md"
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        return
    m, s = compare["machine"], compare["settings"]
    block = [
        README_START,
        f"Medians of {s['runs']} runs, N = {s['n']:,} no-op tasks, one worker process per "
        f"system, on {m['cores']} cores ({m['cpu']}), Python {m['python']}, Redis {m['redis']}; "
        "method, settings and Leasq's targets in [docs/benchmarks.md](docs/benchmarks.md).",
        "",
        *results_table(system_rows(compare)),
        "",
        "![Leasq and the Python task queues](docs/img/bench-overview.png)",
        README_END,
    ]
    head, rest = text.split(README_START, 1)
    tail = rest.split(README_END, 1)[1]
    readme.write_text(head + "\n".join(block) + tail)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="render the smoke run's results")
    args = parser.parse_args()
    suffix = "-quick" if args.quick else ""
    compare = json.loads((RESULTS / f"compare{suffix}.json").read_text())
    scale_path = RESULTS / f"scale{suffix}.json"
    scale = json.loads(scale_path.read_text()) if scale_path.exists() else None
    out_dir = ROOT / ("build/bench-quick" if args.quick else "docs")
    img = out_dir / "img"
    img.mkdir(parents=True, exist_ok=True)
    charts.scenario_panels(system_rows(compare), img, compare["settings"]["crash_cap_s"])
    if scale:
        charts.scale_curves(scale, img)
    text = render(compare, scale, "img") + section(RESULTS / f"enqueue{suffix}.json")
    (out_dir / "benchmarks.md").write_text(text)
    if not args.quick:
        update_readme(compare)
    print(text)


if __name__ == "__main__":
    main()
