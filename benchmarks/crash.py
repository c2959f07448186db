"""Crash recovery: ``kill -9`` a worker holding a task, time until the task starts again.

Worker A takes a task whose handler records its start and hangs. Worker B is started and
proven ready (a probe task recorded by one of B's processes) while A still holds the task, so
B's start-up is not counted. Then A's whole process group gets SIGKILL, as in a machine crash,
and the clock runs until the task's second start, up to a cap. A system that does not recover
within the cap is not tried again: its later runs would only wait out the cap once more.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from pathlib import Path

from peers.base import PeerInfo
from session import BenchError, Session, session

READY_PROBES = 40


def _belongs_to(pid: int, worker: subprocess.Popen[bytes]) -> bool:
    try:
        return os.getpgid(pid) == worker.pid
    except ProcessLookupError:
        return False


def prove_ready(current: Session, worker: subprocess.Popen[bytes]) -> bool:
    """Send probes one at a time until one runs in ``worker``; False if none did."""
    for sent in range(1, READY_PROBES + 1):
        current.drive("probes", n=1, gap=0)
        current.wait_until(
            lambda s=sent: current.redis.llen("bench:probes") >= s, "probe", 60, worker
        )
        _, pid = current.probes()[-1]
        if _belongs_to(pid, worker):
            return True
    return False


def recover_once(current: Session, cap: float) -> float | None:
    """Seconds from the kill to the task's second start, or None past ``cap``."""
    first = current.start_worker(0, tag="crash-a")
    current.drive("crash")
    current.wait_until(lambda: len(current.crashes()) >= 1, "crash task start", 120, first)
    second = current.start_worker(0, tag="crash-b")
    if not prove_ready(current, second):
        raise BenchError(f"{current.peer.name}: second worker never took a probe")
    killed_at = time.time()
    current.kill_worker(first)
    with contextlib.suppress(BenchError):
        current.wait_until(
            lambda: len(current.crashes()) >= 2, "second start", cap, second, every=0.01
        )
    starts = current.crashes()
    return starts[1] - killed_at if len(starts) >= 2 else None


def crash_runs(
    peer: PeerInfo, redis_url: str, workdir: Path, runs: int, cap: float
) -> dict[str, object]:
    """Up to ``runs`` recoveries; stops at the first that does not happen within ``cap``."""
    times: list[float | None] = []
    try:
        for _ in range(runs):
            with session(peer, redis_url, workdir) as current:
                seconds = recover_once(current, cap)
            times.append(seconds)
            if seconds is None:
                break
    except (BenchError, OSError, subprocess.SubprocessError) as err:
        return {"times": times, "cap": cap, "error": str(err)}
    return {"times": times, "cap": cap}
