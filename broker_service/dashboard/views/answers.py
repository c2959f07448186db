"""How the queue and task screens answer what they cannot show or do: a page with the reason
and the right status for a bad address, and a redirect carrying a result or refusal message
for an action (the page shows ``done`` as a notice and ``error`` as an alert)."""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from leasq_broker.dashboard.access import Viewer, prefix_of
from leasq_broker.dashboard.rendering import render
from leasq_broker.errors import (
    GroupNotFound,
    InvalidField,
    LeasqError,
    QueueNotFound,
    TaskNotFound,
)

STATES = ("pending", "active", "scheduled", "retry", "archived", "completed", "aggregating")
#: A result message longer than this is cut (it travels in the address).
MESSAGE_CHARS = 400


def problem(request: web.Request, who: Viewer, error: LeasqError | str, status: int = 0
            ) -> web.Response:
    """A page saying why the address shows nothing: 404 for an unknown queue or task, 400 for
    a malformed value (or ``status`` when given)."""
    message = error if isinstance(error, str) else error.message
    if not status:
        missing = (QueueNotFound, TaskNotFound, GroupNotFound)
        status = 404 if isinstance(error, missing) else 400
    return render(request, "queue/problem.html", who, status=status, message=message,
                  title="Not found" if status == 404 else "Bad request")


def queue_url(request: web.Request, queue: str, **query: str) -> str:
    """The queue page's address with ``query`` (empty values left out)."""
    if query.get("state") not in STATES:
        query.pop("state", None)
    kept = {name: value[:MESSAGE_CHARS] for name, value in query.items() if value}
    suffix = f"?{urlencode(kept)}" if kept else ""
    return f"{prefix_of(request)}queues/{queue}{suffix}"


def task_url(request: web.Request, queue: str, task_id: str, **query: str) -> str:
    kept = {name: value[:MESSAGE_CHARS] for name, value in query.items() if value}
    suffix = f"?{urlencode(kept)}" if kept else ""
    return f"{prefix_of(request)}queues/{queue}/tasks/{task_id}{suffix}"


def refused(error: LeasqError) -> str:
    """A refusal as the page's alert says it."""
    if isinstance(error, InvalidField):
        return f"Not accepted: {error.message}"
    return error.message
