"""What the dashboard's pages may use: the broker's domain services, nothing lower."""

from __future__ import annotations

from dataclasses import dataclass

from leasq_broker.admin import Admin
from leasq_broker.clock import Clock
from leasq_broker.groups.service import Groups
from leasq_broker.operations.service import Operations
from leasq_broker.schedules.service import Schedules
from leasq_broker.settings.service import QueueSettingsService
from leasq_broker.workers.registry import WorkerRegistry


@dataclass(frozen=True, slots=True)
class DashboardServices:
    """The use cases behind the admin RPCs, shared with the pages so that there is one copy of
    the queue logic. ``started_at_ms`` and ``version`` describe this broker process."""

    admin: Admin
    operations: Operations
    workers: WorkerRegistry
    schedules: Schedules
    groups: Groups
    queue_settings: QueueSettingsService
    clock: Clock
    started_at_ms: int
    version: str
