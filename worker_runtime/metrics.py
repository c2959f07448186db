"""The worker's Prometheus metrics and the small HTTP server of ``--metrics-listen``.

Attempts are counted by the attempt runner as they end, in plain ints that become the
``leasq_worker_tasks_total`` counter and the handler-duration histogram only at a scrape (see
:mod:`leasq_worker.attempt_counts`); the busy-slot gauge is read from the worker only when
Prometheus scrapes, through a callback. The broker's metrics are separate (its own port): a
worker's describe what its handlers do, the broker's what the queues hold. prometheus-client
and aiohttp are imported at first use: process-pool children import this package too, and must
start fast.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

# Outcome labels of leasq_worker_tasks_total.
SUCCEEDED = "succeeded"
FAILED = "failed"  # will be retried, or archived when the broker says so
RELEASED = "released"  # no handler here: given back for another worker
REQUEUED = "requeued"  # stopped by the worker's shutdown, given back
LOST = "lost"  # the lease was lost (expired, or the task was taken away): nothing reported

DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                    60.0, 300.0, 1800.0)  # fmt: skip


class WorkerMetrics:
    """The worker's metrics, registered in prometheus-client's default registry."""

    def __init__(self) -> None:
        from prometheus_client import REGISTRY, Counter, Gauge

        from leasq_worker.attempt_counts import AttemptCounts

        self.attempts = AttemptCounts(DURATION_BUCKETS)
        REGISTRY.register(self.attempts)
        self.leases_lost = Counter(
            "leasq_worker_leases_lost", "Attempts whose lease was lost before their outcome "
            "could be reported (expired during a stall, or the task was taken away)",
        )  # fmt: skip
        self.slots_busy = Gauge("leasq_worker_slots_busy",
                                "Leases held now: running, or awaiting settlement")
        self.slots = Gauge("leasq_worker_slots",
                           "Tasks this worker runs at once (its concurrency)")


@functools.cache
def registered() -> WorkerMetrics:
    """The worker's metrics, made and registered at the first call."""
    return WorkerMetrics()


def attempt_ended(task_type: str, outcome: str, seconds: float | None) -> None:
    """Count one attempt; ``seconds`` is the handler's run time (None when none ran)."""
    metrics = registered()
    metrics.attempts.add(task_type, outcome, seconds)
    if outcome == LOST:
        metrics.leases_lost.inc()


def watch_slots(busy: Callable[[], int], slots: int) -> None:
    """Read the busy-slot gauge from ``busy()`` at each scrape."""
    metrics = registered()
    metrics.slots_busy.set_function(lambda: float(busy()))
    metrics.slots.set(slots)


class MetricsServer:
    """``/metrics`` (and ``/healthz``) of one worker process."""

    def __init__(self) -> None:
        self._runner: Any = None  # an aiohttp AppRunner once started

    async def start(self, listen: str) -> str:
        """Serve on ``host:port`` (port 0: a free one); the bound address. OSError when taken."""
        from aiohttp import web  # only the process that serves pays for importing it
        from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

        registered()

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
