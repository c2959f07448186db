"""The task screen."""

from __future__ import annotations

from leasq_broker.dashboard.routes import Routes


def register(routes: Routes) -> None:
    """Nothing yet."""
