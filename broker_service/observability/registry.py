"""Which scrape-time collector the process's default Prometheus registry holds.

The broker's counters are process-wide, but the queue collector belongs to one running broker
(its Redis client). A process that runs brokers one after another (tests, embedding) must
expose the current one's queues only, and registering a second collector with the same metric
names would be refused: the previous one is replaced.
"""

from __future__ import annotations

from prometheus_client import REGISTRY
from prometheus_client.registry import Collector

_installed: list[Collector] = []


def ensure_registered(collector: Collector) -> None:
    """Register ``collector`` in the default registry instead of the one registered before."""
    while _installed:
        REGISTRY.unregister(_installed.pop())
    REGISTRY.register(collector)
    _installed.append(collector)
