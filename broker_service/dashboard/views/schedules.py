"""The schedules screen: every periodic schedule with its next fires and history; pause,
resume and trigger now.

The actions are the ScheduleService calls of the same names, through the same use case
(:class:`~leasq_broker.schedules.service.Schedules`): a pause drops the ticks until the resume,
which starts again from the first tick after it; a trigger fires once now, outside the spec,
and leaves the next tick where it is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote, urlencode

from aiohttp import web

from leasq_broker.dashboard.access import Viewer, check_action, prefix_of, viewer
from leasq_broker.dashboard.rendering import ms_time, render
from leasq_broker.dashboard.routes import Routes, services
from leasq_broker.errors import DuplicateTask, InvalidField, LeasqError, ScheduleNotFound
from leasq_broker.schedules.service import Schedules

PAGE_SIZE = 50
UPCOMING = 5
HISTORY = 50
_SERVICE = "/leasq.v1.ScheduleService/"
STATUS = {ScheduleNotFound: 404, InvalidField: 400, DuplicateTask: 409}
Action = Callable[[Schedules, str], Awaitable[str]]


async def _pause(schedules: Schedules, name: str) -> str:
    await schedules.set_paused(name, True)
    return f"Schedule {name} is paused: no tick fires until it is resumed"


async def _resume(schedules: Schedules, name: str) -> str:
    view = await schedules.set_paused(name, False)
    return f"Schedule {name} is active again: next fire {_utc(view.next_fire_ms)}"


async def _trigger(schedules: Schedules, name: str) -> str:
    enqueued = await schedules.trigger(name)
    return f"Schedule {name} fired now: task {enqueued.id} enqueued in {enqueued.queue}"


ACTIONS: dict[str, tuple[str, Action]] = {
    "pause": (_SERVICE + "PauseSchedule", _pause),
    "resume": (_SERVICE + "ResumeSchedule", _resume),
    "trigger": (_SERVICE + "TriggerSchedule", _trigger),
}


def register(routes: Routes) -> None:
    routes.get("schedules", schedules_page)
    routes.get("schedules/{name}", schedule_page)
    for action in ACTIONS:
        routes.post(f"schedules/{{name}}/{action}", _acting(action))
        # A refused action answers on its own URL; reloading it (or the live refresh) lands
        # on the schedule's page.
        routes.get(f"schedules/{{name}}/{action}", to_schedule)


def _utc(ms: int | None) -> str:
    return ms_time(ms) + " UTC" if ms else "-"


def _status(error: LeasqError) -> int:
    return next((code for kind, code in STATUS.items() if isinstance(error, kind)), 400)


async def _list(request: web.Request, who: Viewer, *, status: int = 200,
                error: str | None = None) -> web.Response:
    """The list (``?after=<name>`` pages on), with a result or an error message."""
    after = request.query.get("after", "")[:200]
    views, token, total = await services(request).schedules.page(PAGE_SIZE, after)
    return render(request, "schedules.html", who, status=status, error=error,
                  flash=request.query.get("done", "")[:200], schedules=views, after=after,
                  next_after=token, total=total)  # fmt: skip


async def _detail(request: web.Request, who: Viewer, name: str, *, status: int = 200,
                  error: str | None = None) -> web.Response:
    """One schedule with its upcoming ticks and history; the list with 404 if it is gone."""
    schedules = services(request).schedules
    try:
        view = await schedules.get(name)
        fires = await schedules.fires(name, HISTORY)
    except (ScheduleNotFound, InvalidField) as refusal:
        return await _list(request, who, status=_status(refusal), error=refusal.message)
    return render(request, "schedule.html", who, status=status, error=error,
                  flash=request.query.get("done", "")[:200], s=view, fires=fires,
                  upcoming=Schedules.upcoming(view, UPCOMING))  # fmt: skip


async def schedules_page(request: web.Request) -> web.StreamResponse:
    return await _list(request, viewer(request))


async def schedule_page(request: web.Request) -> web.StreamResponse:
    return await _detail(request, viewer(request), request.match_info["name"])


async def to_schedule(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther(f"{prefix_of(request)}schedules/{quote(request.match_info['name'])}")


def _acting(action: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    method, act = ACTIONS[action]

    async def handle(request: web.Request) -> web.StreamResponse:
        """Do the action; back to the page the form was on (``back``: list or detail)."""
        await check_action(request, method)
        name = request.match_info["name"]
        back = str((await request.post()).get("back", ""))
        try:
            done = await act(services(request).schedules, name)
        except LeasqError as refusal:
            return await _detail(request, viewer(request), name, status=_status(refusal),
                                 error=refusal.message)  # fmt: skip
        page = "schedules" if back == "list" else f"schedules/{quote(name)}"
        raise web.HTTPSeeOther(f"{prefix_of(request)}{page}?{urlencode({'done': done})}")

    return handle
