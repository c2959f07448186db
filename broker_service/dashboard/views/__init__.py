"""One module per screen; each has ``register(routes)`` adding its pages and actions."""

from __future__ import annotations

from types import ModuleType

from leasq_broker.dashboard.views import overview, queue, redis_info, schedules, task, workers

VIEWS: tuple[ModuleType, ...] = (overview, queue, task, workers, schedules, redis_info)
