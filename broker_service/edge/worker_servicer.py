"""The worker calls of InspectService (mixed into its servicer)."""

from __future__ import annotations

from leasq_broker.workers.registry import WorkerRegistry


class WorkerInspectMethods:
    """ListWorkers, QuietWorker, StopWorker."""

    _workers: WorkerRegistry
