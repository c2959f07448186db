"""The worker's Prometheus metrics and the small HTTP server of ``--metrics-listen``.

Counters are updated by the attempt runner as attempts end (children per (type, outcome) are
kept, so an update is one locked add); the busy-slot gauge is read from the worker only when
Prometheus scrapes, through a callback. The broker's metrics are separate (its own port): a
worker's describe what its handlers do, the broker's what the queues hold.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

# Outcome labels of leasq_worker_tasks_total.
SUCCEEDED = "succeeded"
FAILED = "failed"  # will be retried, or archived when the broker says so
RELEASED = "released"  # no handler here: given back for another worker
REQUEUED = "requeued"  # stopped by the worker's shutdown, given back
LOST = "lost"  # the lease was lost (expired, or the task was taken away): nothing reported

DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                    60.0, 300.0, 1800.0)  # fmt: skip

TASKS = Counter("leasq_worker_tasks", "Attempts run by this worker, by task type and outcome",
                ["type", "outcome"])
HANDLER_DURATION = Histogram(
    "leasq_worker_handler_duration_seconds", "Time the handler of an attempt ran, by task type",
    ["type"], buckets=DURATION_BUCKETS,
)  # fmt: skip
LEASES_LOST = Counter(
    "leasq_worker_leases_lost", "Attempts whose lease was lost before their outcome could be "
    "reported (expired during a stall, or the task was taken away)",
)  # fmt: skip
SLOTS_BUSY = Gauge("leasq_worker_slots_busy", "Leases held now: running, or awaiting settlement")
SLOTS = Gauge("leasq_worker_slots", "Tasks this worker runs at once (its concurrency)")

_tasks = functools.cache(TASKS.labels)
_durations = functools.cache(HANDLER_DURATION.labels)


def attempt_ended(task_type: str, outcome: str, seconds: float | None) -> None:
    """Count one attempt; ``seconds`` is the handler's run time (None when none ran)."""
    _tasks(task_type, outcome).inc()
    if seconds is not None:
        _durations(task_type).observe(seconds)
    if outcome == LOST:
        LEASES_LOST.inc()


def watch_slots(busy: Callable[[], int], slots: int) -> None:
    """Read the busy-slot gauge from ``busy()`` at each scrape."""
    SLOTS_BUSY.set_function(lambda: float(busy()))
    SLOTS.set(slots)


class MetricsServer:
    """``/metrics`` (and ``/healthz``) of one worker process."""

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None

    async def start(self, listen: str) -> str:
        """Serve on ``host:port`` (port 0: a free one); the bound address. OSError when taken."""
        host, sep, port = listen.rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError(f"--metrics-listen: expected HOST:PORT, got {listen!r}")

        async def metrics(_: web.Request) -> web.Response:
            return web.Response(body=generate_latest(REGISTRY),
                                headers={"Content-Type": CONTENT_TYPE_LATEST})  # fmt: skip

        async def healthz(_: web.Request) -> web.Response:
            return web.Response(text="ok\n")

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        app.router.add_get("/healthz", healthz)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, host.strip("[]") or "0.0.0.0", int(port)).start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        return f"{host}:{runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
