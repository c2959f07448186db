"""Handlers for ``worker_drain.py``'s worker process: no-op tasks, counted and timed.

``bench:noop`` counts tasks and, at ``BENCH_COUNT``, writes the wall-clock span from the first
handler start to the last, and the worker's CPU seconds meanwhile, to ``BENCH_RESULT``.
``bench:latency`` reads the enqueue instant from its payload and, after ``BENCH_SAMPLES`` tasks,
writes every enqueue -> handler-start delay to ``BENCH_RESULT + ".latency"``. The files are
written once, at the end, from the loop: a blocking write there is fine.
"""

from __future__ import annotations

import json
import os
import time

from leasq_worker import Registry, Task

registry = Registry()
_COUNT = int(os.environ.get("BENCH_COUNT", "0"))
_SAMPLES = int(os.environ.get("BENCH_SAMPLES", "0"))
_RESULT = os.environ.get("BENCH_RESULT", "")
_state = {"count": 0, "first": 0.0, "cpu": 0.0}
_delays: list[float] = []


@registry.handler("bench:noop")
async def noop(task: Task) -> None:
    now = time.time()
    _state["count"] += 1
    if _state["count"] == 1:
        _state["first"] = now
        _state["cpu"] = time.process_time()
    if _state["count"] == _COUNT:
        cpu = time.process_time() - _state["cpu"]
        _write(_RESULT, {"count": _COUNT, "seconds": now - _state["first"], "cpu": cpu})


@registry.handler("bench:latency")
async def latency(task: Task) -> None:
    _delays.append(time.time() - float(task.payload))
    if len(_delays) == _SAMPLES:
        _write(_RESULT + ".latency", _delays)


def _write(path: str, value: object) -> None:
    with open(path + ".tmp", "w") as out:
        json.dump(value, out)
    os.replace(path + ".tmp", path)
