"""The overview: every queue with its sizes and rates, totals, charts, and the broker's own
figures.

Its cost does not grow with round trips as queues are added: the queue index (one SMEMBERS),
every queue's counts (one pipeline of ``queue_stats`` scripts), then, at once, every queue's
daily history (one pipeline of MGETs) and the server's INFO (one pipeline). Nothing is cached:
every refresh shows Redis as it is. The table shows PAGE_SIZE queues per page (filtered,
sorted); the cards and charts cover every queue.

The page answers a ``Server-Timing`` header (``redis`` reads, ``render``, ``total``, in ms) so
that its server-side cost can be measured from outside (see benchmarks/dashboard_bench.py).
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from leasq_broker.dashboard.access import viewer
from leasq_broker.dashboard.rendering import render
from leasq_broker.dashboard.routes import Routes, services
from leasq_broker.dashboard.views import overview_model as model
from leasq_broker.operations.models import QueueHistory

HISTORY_CHOICES = (7, 30, 90)
PAGE_SIZE = 100
MAX_FILTER = 200


def register(routes: Routes) -> None:
    routes.get("", overview)


async def overview(request: web.Request) -> web.StreamResponse:
    started = time.perf_counter()
    who = viewer(request)
    days, needle, sort, page = _params(request)
    dash = services(request)
    counts, now_ms = await dash.admin.every_queue_counts()
    names = [c.queue for c in counts]
    histories, server = await asyncio.gather(
        dash.operations.histories(names, max(days, model.SPARK_DAYS)),
        dash.operations.server_state())
    read = time.perf_counter()
    every = model.rows(counts, histories, now_ms)
    chosen = model.select(every, needle, sort)
    last_page = model.pages(len(chosen), PAGE_SIZE)
    page = min(page, last_page)
    response = render(
        request, "overview.html", who,
        rows=chosen[(page - 1) * PAGE_SIZE: page * PAGE_SIZE], matched=len(chosen),
        totals=model.totals(every), states=model.STATES, days=days,
        history_choices=HISTORY_CHOICES, needle=needle, sort=sort, sorts=tuple(model.SORTS),
        page=page, last_page=last_page, server=server, dash=dash,
        charts={"history": model.history_chart([_first(h, days) for h in histories]),
                "sizes": model.sizes_chart(every)},
        spark=(model.SPARK_WIDTH, model.SPARK_HEIGHT))  # fmt: skip
    done = time.perf_counter()
    response.headers["Server-Timing"] = (
        f"redis;dur={(read - started) * 1000:.1f}, render;dur={(done - read) * 1000:.1f}, "
        f"total;dur={(done - started) * 1000:.1f}")
    return response


def _first(history: QueueHistory, days: int) -> QueueHistory:
    """The newest ``days`` days of ``history`` (read for max(days, the sparkline's))."""
    return QueueHistory(history.days[:days], history.processed_total,
                              history.failed_total)  # fmt: skip


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
