"""Jinja2 templates of the dashboard and the filters they share (times, sizes, counts).

Templates get ``prefix`` (the dashboard's path, ending in ``/``), ``viewer`` (may they act,
their CSRF value) and ``now_ms`` besides what a view passes. Autoescaping is on for every
template: task payloads and error messages are user data.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import jinja2
from aiohttp import web

from leasq_broker.dashboard.access import Viewer, prefix_of, remember_csrf

ENVIRONMENT = web.AppKey("dashboard_templates", jinja2.Environment)


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("leasq_broker.dashboard", "templates"),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(ms_time=ms_time, ago=ago, duration=duration, size=size, count=count,
                       pretty_json=pretty_json)  # fmt: skip
    return env


def render(request: web.Request, template: str, viewer: Viewer, *, status: int = 200,
           **context: Any) -> web.Response:
    """Render ``template`` as a whole page (htmx swaps the live part out of it)."""
    page = request.app[ENVIRONMENT].get_template(template).render(
        prefix=prefix_of(request), viewer=viewer, now_ms=int(time.time() * 1000),
        path=request.path_qs, **context)  # fmt: skip
    response = web.Response(text=page, status=status, content_type="text/html")
    response.headers["Cache-Control"] = "no-store"
    remember_csrf(request, response)
    return response


def ms_time(ms: int | None) -> str:
    """A Unix-ms instant as ``2026-12-01 21:20:28`` UTC; ``-`` for none."""
    if not ms:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def duration(ms: float | None) -> str:
    """``1.2 s``, ``3 min 4 s``, ``2 h 5 min``, ``3 d 4 h``; ``-`` for none."""
    if ms is None:
        return "-"
    seconds = ms / 1000
    if seconds < 1:
        return f"{ms:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {sec} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def ago(ms: int | None, now_ms: int | None = None) -> str:
    """How long before now the instant ``ms`` was (``in ...`` when it is ahead)."""
    if not ms:
        return "-"
    delta = (now_ms or int(time.time() * 1000)) - ms
    return f"{duration(delta)} ago" if delta >= 0 else f"in {duration(-delta)}"


def size(n: int | None) -> str:
    """Bytes as ``512 B``, ``1.5 KiB``, ``3.2 MiB``, ``1.1 GiB``."""
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def count(n: int | None) -> str:
    """``12,345``."""
    return "-" if n is None else f"{n:,}"


def pretty_json(data: bytes) -> str | None:
    """``data`` as indented JSON when it is JSON text, else None (the page shows hex)."""
    try:
        return json.dumps(json.loads(data.decode()), indent=2, ensure_ascii=False,
                          sort_keys=True)  # fmt: skip
    except (UnicodeDecodeError, ValueError):
        return None
