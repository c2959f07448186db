"""The overview: every queue with its sizes and rates, totals, charts, and the broker's own
figures.

Its Redis round trips do not grow with the number of queues: the queue index (one SMEMBERS)
and every queue's counts (one pipeline of ``queue_stats`` scripts), then, at once, the daily
counters of the queues on the page (one pipeline of MGETs, for their sparklines) and the
server's INFO (one pipeline). The table shows PAGE_SIZE queues per page (filtered, sorted); the
cards and the sizes chart cover every queue. The daily chart (processed/failed per day over
every queue, 7/30/90 days: one MGET per queue and so the costliest read) is a separate JSON
resource, ``overview/history``, that the page's script fetches. Nothing is cached on the
server: every refresh shows Redis as it is.

Both answer a ``Server-Timing`` header (wall ms of the ``redis`` reads, the ``render`` and the
``total``; ``cpu``: the broker process' CPU time meanwhile) so that their server-side cost can
be measured from outside (see benchmarks/dashboard_bench.py).
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from leasq_broker.dashboard.access import viewer
from leasq_broker.dashboard.rendering import render
from leasq_broker.dashboard.routes import Routes, services
from leasq_broker.dashboard.views import overview_model as model

HISTORY_CHOICES = (7, 30, 90)
PAGE_SIZE = 100
MAX_FILTER = 200


def register(routes: Routes) -> None:
    routes.get("", overview)
    routes.get("overview/history", history)


async def overview(request: web.Request) -> web.StreamResponse:
    clock = _Timing()
    who = viewer(request)
    days, needle, sort, page = _params(request)
    dash = services(request)
    counts, now_ms = await dash.admin.every_queue_counts()
    every = model.rows(counts, now_ms)
    chosen = model.select(every, needle, sort)
    last_page = model.pages(len(chosen), PAGE_SIZE)
    page = min(page, last_page)
    shown = chosen[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
    daily, server = await asyncio.gather(
        dash.operations.daily_counts([row.name for row in shown], model.SPARK_DAYS),
        dash.operations.server_state())
    clock.read()
    response = render(
        request, "overview.html", who,
        rows=[(row, *model.sparkline(daily, n)) for n, row in enumerate(shown)],
        matched=len(chosen), totals=model.totals(every), states=model.STATES, days=days,
        history_choices=HISTORY_CHOICES, needle=needle, sort=sort, sorts=tuple(model.SORTS),
        page=page, last_page=last_page, server=server, dash=dash,
        sizes=model.sizes_chart(every), spark=(model.SPARK_WIDTH, model.SPARK_HEIGHT))
    return clock.stamp(response)


async def history(request: web.Request) -> web.StreamResponse:
    """``{"labels": [days], "processed": [...], "failed": [...]}`` over every queue, oldest
    day first."""
    clock = _Timing()
    viewer(request)
    days = _params(request)[0]
    dash = services(request)
    names = [name for name, _paused in await dash.admin.list_queues()]
    daily = await dash.operations.daily_counts(names, days)
    clock.read()
    response = web.json_response(model.history_chart(daily, days))
    response.headers["Cache-Control"] = "no-store"
    return clock.stamp(response)


class _Timing:
    """The Server-Timing of one request."""

    def __init__(self) -> None:
        self.started, self.cpu = time.perf_counter(), time.process_time()
        self.reads_done = self.started

    def read(self) -> None:
        self.reads_done = time.perf_counter()

    def stamp(self, response: web.StreamResponse) -> web.StreamResponse:
        done, cpu = time.perf_counter(), time.process_time()
        response.headers["Server-Timing"] = (
            f"redis;dur={(self.reads_done - self.started) * 1000:.1f}, "
            f"render;dur={(done - self.reads_done) * 1000:.1f}, "
            f"total;dur={(done - self.started) * 1000:.1f}, cpu;dur={(cpu - self.cpu) * 1000:.1f}")
        return response


def _params(request: web.Request) -> tuple[int, str, str, int]:
    """``days`` (history chart), ``q`` (name filter), ``sort`` and ``page``; 400 when bad."""
    query = request.query
    try:
        days = int(query.get("days", "7"))
        page = int(query.get("page", "1"))
    except ValueError:
        raise web.HTTPBadRequest(text="days and page must be whole numbers\n") from None
    if days not in HISTORY_CHOICES:
        raise web.HTTPBadRequest(
            text=f"days must be one of {', '.join(map(str, HISTORY_CHOICES))}\n")
    if page < 1:
        raise web.HTTPBadRequest(text="page must be 1 or more\n")
    sort = query.get("sort", "name")
    if sort not in model.SORTS:
        raise web.HTTPBadRequest(text=f"sort must be one of {', '.join(model.SORTS)}\n")
    needle = query.get("q", "").strip()
    if len(needle) > MAX_FILTER:
        raise web.HTTPBadRequest(text=f"the filter is at most {MAX_FILTER} characters\n")
    return days, needle, sort, page
