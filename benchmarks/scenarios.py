"""The measured scenarios of one run of one system: enqueue, bulk enqueue, drain, idle latency.

Every figure is checked, not assumed: a bulk enqueue must leave exactly N pending tasks, a drain
must bring the handlers' counter to exactly N (and no further, so no task ran twice), and the
latency scenario waits for every probe's record.
"""

from __future__ import annotations

import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from peers.base import PeerInfo
from session import BenchError, Session, session

WARMUP_PROBES = 10
SETTLE_S = 0.5


@dataclass(frozen=True)
class Plan:
    """Sizes of one run."""

    n: int
    probes: int
    gap: float
    scenarios: frozenset[str]


def drain_limit(n: int) -> float:
    """Seconds a drain may take before it counts as failed (RQ, the slowest here, does
    100-150 tasks/s on a loaded 2-core machine)."""
    return 60 + n / 50


def bulk(current: Session, plan: Plan) -> dict[str, float]:
    answer = current.drive("bulk", n=plan.n)
    if int(answer["pending"]) != plan.n:
        raise BenchError(f"bulk enqueue left {answer['pending']} of {plan.n} tasks pending")
    return {"bulk": plan.n / answer["seconds"]}


def drain(current: Session, plan: Plan) -> dict[str, float]:
    """N tasks are already pending; one worker process runs them all."""
    worker = current.start_worker(plan.n, tag="drain")
    current.wait_until(
        lambda: current.count() >= plan.n,
        f"{plan.n} tasks done",
        drain_limit(plan.n),
        worker,
        every=0.05,
    )
    time.sleep(SETTLE_S)
    if (count := current.count()) != plan.n:
        raise BenchError(f"counter at {count} after draining {plan.n}: tasks ran twice")
    return {"drain": plan.n / current.drain_span()}


def latency(current: Session, plan: Plan) -> dict[str, float]:
    """Probes one every ``gap`` seconds to an idle worker; the first few only warm up."""
    if not current.workers:
        current.start_worker(0, tag="latency")
    worker = current.workers[0]
    total = WARMUP_PROBES + plan.probes
    current.drive("probes", n=total, gap=plan.gap)
    current.wait_until(
        lambda: current.redis.llen("bench:probes") >= total, f"{total} probes", 120, worker
    )
    delays = sorted(d * 1000 for d, _ in current.probes()[WARMUP_PROBES:])
    return {
        "p50": statistics.median(delays),
        "p99": delays[min(len(delays) - 1, round(len(delays) * 0.99) - 1)],
    }


def one_run(peer: PeerInfo, redis_url: str, workdir: Path, plan: Plan) -> dict[str, float]:
    """All selected scenarios once; each failure is recorded as an error and the rest go on."""
    figures: dict[str, float] = {}
    errors: list[str] = []

    def attempt(step: Callable[[], dict[str, float]]) -> bool:
        try:
            figures.update(step())
            return True
        except (BenchError, OSError, subprocess.SubprocessError) as err:
            errors.append(str(err))
            return False

    wants = plan.scenarios
    if "bulk" in wants and peer.bulk_api:
        with session(peer, redis_url, workdir) as current:
            attempt(lambda: bulk(current, plan))
    if wants & {"single", "drain", "latency"}:
        with session(peer, redis_url, workdir) as current:
            filled = True
            if wants & {"single", "drain"}:
                filled = attempt(lambda: single(current, plan))
            drained = "drain" not in wants or (filled and attempt(lambda: drain(current, plan)))
            if "latency" in wants and not drained:
                errors.append("latency skipped: the drain before it did not complete")
            elif "latency" in wants:
                attempt(lambda: latency(current, plan))
    if errors:
        figures["errors"] = "; ".join(errors)  # type: ignore[assignment]
    return figures


def single(current: Session, plan: Plan) -> dict[str, float]:
    answer = current.drive("single", n=plan.n)
    return {"single": plan.n / answer["seconds"]}
