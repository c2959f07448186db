"""The overview: every queue with its sizes and rates, and the broker's own figures."""

from __future__ import annotations

from aiohttp import web

from leasq_broker.dashboard.access import viewer
from leasq_broker.dashboard.rendering import render
from leasq_broker.dashboard.routes import Routes, services


def register(routes: Routes) -> None:
    routes.get("", overview)


async def overview(request: web.Request) -> web.StreamResponse:
    who = viewer(request)
    queues = await services(request).admin.list_queues()
    return render(request, "overview.html", who, queues=queues)
