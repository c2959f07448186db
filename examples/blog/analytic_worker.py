"""Handlers of the ``analytic`` queue: count reads and clicks.

Run with ``python -m leasq_worker examples.blog.analytic_worker:registry --queue analytic``.

Each event carries an id made by the HTTP app. The counters and the event id are written in one
SQLite transaction (:mod:`examples.blog.stats_db`), so a task delivered again after its
counters were committed (the worker died before the Ack) counts nothing the second time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from examples.blog import db, stats_db
from examples.blog.context import WorkerContext
from examples.blog.links import Utm
from examples.blog.tasks import TRACK_CLICK, TRACK_READ, TrackClick, TrackRead
from leasq_worker import Registry, Task

Result = dict[str, Any]


def track_read(context: WorkerContext, task: Task) -> Result:
    """Count one read of a post, and of its campaign when the visit came with UTM parameters."""
    event: TrackRead = task.decode()
    utm = None
    if event.utm_source:
        utm = Utm(event.utm_source, event.utm_medium, event.utm_campaign)
    with db.connect(context.settings.db_path) as conn:
        counted = stats_db.record_read(conn, event.event_id, event.post_id, utm)
    _log(task).debug("read tracked", post_id=event.post_id, counted=counted)
    return {"counted": counted}


def track_click(context: WorkerContext, task: Task) -> Result:
    """Count one click on the link of a subscriber's notification."""
    event: TrackClick = task.decode()
    with db.connect(context.settings.db_path) as conn:
        counted = stats_db.record_click(conn, event.event_id, event.post_id, event.subscriber_id)
    _log(task).debug("click tracked", post_id=event.post_id, counted=counted)
    return {"counted": counted}


def _log(task: Task) -> Any:
    return structlog.get_logger("blog.analytic").bind(task_id=task.id, queue=task.queue)


def build_registry(context: WorkerContext | None = None) -> Registry:
    """The analytic worker's registry; handlers run in the worker's thread pool."""
    context = context or WorkerContext()
    handlers = Registry()

    def bound(func: Callable[[WorkerContext, Task], Result]) -> Callable[[Task], Result]:
        return lambda task: func(context, task)

    handlers.add(TRACK_READ, bound(track_read))
    handlers.add(TRACK_CLICK, bound(track_click))
    return handlers


registry = build_registry()
