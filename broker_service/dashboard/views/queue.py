"""The queue screen: its state and counts, a tab per task state with a paged table (or search
results, or the groups of AGGREGATING tasks), and its flow-control settings. The actions are
in :mod:`.queue_actions`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from leasq_broker.admin import page_window
from leasq_broker.dashboard.access import viewer
from leasq_broker.dashboard.rendering import render
from leasq_broker.dashboard.routes import Routes, services
from leasq_broker.dashboard.services import DashboardServices
from leasq_broker.dashboard.views import queue_actions
from leasq_broker.dashboard.views.answers import STATES, problem
from leasq_broker.dashboard.views.task_fields import TaskFields, task_fields
from leasq_broker.errors import LeasqError
from leasq_broker.groups.models import GroupView
from leasq_broker.operations.bulk import ALLOWED_STATES
from leasq_broker.operations.models import SearchCriteria

PAGE_SIZE = 50
#: The actions a selection of tasks of each state may take (what RunTask, ArchiveTask,
#: DeleteTask and CancelTask accept).
ROW_ACTIONS: dict[str, tuple[str, ...]] = {
    "pending": ("archive", "delete"), "active": ("cancel",),
    "scheduled": ("run", "archive", "delete"), "retry": ("run", "archive", "delete"),
    "archived": ("run", "delete"), "completed": ("delete",), "aggregating": (),
}
SEARCH_FIELDS = ("prefix", "type", "payload", "error")


@dataclass(slots=True)
class Listing:
    """What the current tab shows: a page of tasks, search results or groups."""

    tasks: list[TaskFields] = field(default_factory=list)
    groups: list[GroupView] = field(default_factory=list)
    total: int = 0
    offset: int = 0
    next_token: str = ""
    previous_token: str = ""
    searching: bool = False
    examined: int = 0  # search: tasks examined so far (this call and the ones before)


def register(routes: Routes) -> None:
    routes.get("queues/{queue}", queue_page)
    queue_actions.register(routes)


async def queue_page(request: web.Request) -> web.StreamResponse:
    name = request.match_info["queue"]
    who = viewer(request, queues=[name])
    state = request.query.get("state", "pending")
    if state not in STATES:
        return problem(request, who, f"unknown task state {state[:40]!r}: choose one of "
                                     f"{', '.join(STATES)}", 400)  # fmt: skip
    svc = services(request)
    try:
        await svc.admin.require_queue(name)
        counts, now = await svc.admin.queue_counts(name)
        settings = await svc.queue_settings.get(name)
        listing = await _listing(svc, name, state, request.query)
    except LeasqError as error:
        return problem(request, who, error)
    return render(
        request, "queue.html", who, queue=name, state=state, counts=counts, now=now,
        tab_counts=_tab_counts(counts), settings=settings, listing=listing,
        row_actions=ROW_ACTIONS[state], bulk_actions=_bulk_actions(state),
        search={f: request.query.get(f, "") for f in SEARCH_FIELDS}, states=STATES,
        flash=request.query.get("done", ""), error=request.query.get("error", ""),
    )


def _tab_counts(counts: Any) -> dict[str, int]:
    return {state: int(getattr(counts, state)) for state in STATES}


def _bulk_actions(state: str) -> list[str]:
    return [action for action, states in ALLOWED_STATES.items() if state in states]


async def _listing(svc: DashboardServices, queue: str, state: str,
                   query: MultiMapping[str]) -> Listing:
    token = query.get("page", "")
    criteria = _criteria(query)
    if criteria is not None and state != "aggregating":
        result = await svc.operations.search(queue, state, criteria, PAGE_SIZE, token)
        seen = _whole(query.get("seen", "0"))
        return Listing([task_fields(t) for t in result.tasks], next_token=result.next_page_token,
                       searching=True, examined=seen + result.examined)  # fmt: skip
    if state == "aggregating":
        groups, following, total = await svc.groups.page(queue, PAGE_SIZE, token)
        return Listing(groups=groups, total=total, next_token=following)
    offset, previous = page_window(token, state, PAGE_SIZE)
    tasks, following, total = await svc.admin.list_tasks(queue, state, PAGE_SIZE, token)
    return Listing([task_fields(t) for t in tasks], total=total, offset=offset,
                   next_token=following, previous_token=previous)  # fmt: skip


def _criteria(query: MultiMapping[str]) -> SearchCriteria | None:
    """The search asked for, or None when no field is filled."""
    values = {f: query.get(f, "").strip() for f in SEARCH_FIELDS}
    if not any(values.values()):
        return None
    return SearchCriteria(id_prefix=values["prefix"], type=values["type"],
                          payload_contains=values["payload"].encode(),
                          error_type=values["error"])  # fmt: skip


def _whole(text: str) -> int:
    return int(text) if text.isdigit() and len(text) < 16 else 0
