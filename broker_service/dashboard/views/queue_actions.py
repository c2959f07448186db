"""The queue screen's actions: pause/resume, run/archive/delete/cancel selected tasks, act on
every task of a state, change the flow-control and group settings, flush or delete a group.

Each is refused unless the viewer may call the gRPC method with the same effect (CSRF and role
first, :func:`~leasq_broker.dashboard.access.check_action`), then calls the same domain service
as that method, then goes back to the queue page (303) with the result or the refusal.
"""

from __future__ import annotations

from aiohttp import web

from leasq_broker.dashboard.access import check_action
from leasq_broker.dashboard.routes import Routes, services
from leasq_broker.dashboard.views.answers import queue_url, refused
from leasq_broker.dashboard.views.settings_form import settings_update
from leasq_broker.errors import LeasqError
from leasq_broker.groups.service import group_ref
from leasq_broker.operations.bulk import BulkOperation
from leasq_broker.operations.models import TaskFilter

INSPECT = "/leasq.v1.InspectService/"
ROW_METHODS = {"run": "RunTask", "archive": "ArchiveTask", "delete": "DeleteTask",
               "cancel": "CancelTask"}  # fmt: skip
BULK_METHODS: dict[BulkOperation, str] = {"run": "RunAllTasks", "archive": "ArchiveAllTasks",
                                          "delete": "DeleteAllTasks"}  # fmt: skip
DONE = {"run": "ran", "archive": "archived", "delete": "deleted", "cancel": "asked to cancel"}
#: Most tasks one selection may name (a page holds 50).
MAX_SELECTED = 1000


def register(routes: Routes) -> None:
    routes.post("queues/{queue}/{action:pause|resume}", pause)
    routes.post("queues/{queue}/selected/{action:run|archive|delete|cancel}", selected)
    routes.post("queues/{queue}/all/{action:run|archive|delete}", every)
    routes.post("queues/{queue}/settings", settings)
    routes.post("queues/{queue}/groups/{action:flush|delete}", group)


def _back(request: web.Request, state: str = "", done: str = "", error: str = ""
          ) -> web.HTTPSeeOther:
    queue = request.match_info["queue"]
    return web.HTTPSeeOther(queue_url(request, queue, state=state, done=done, error=error))


async def pause(request: web.Request) -> web.StreamResponse:
    queue, action = request.match_info["queue"], request.match_info["action"]
    method = "PauseQueue" if action == "pause" else "ResumeQueue"
    await check_action(request, INSPECT + method, queues=[queue])
    state = str((await request.post()).get("state", ""))
    try:
        await services(request).admin.pause(queue, action == "pause")
    except LeasqError as error:
        raise _back(request, state, error=refused(error)) from None
    raise _back(request, state, done=f"Queue {queue} {action}d.")


async def selected(request: web.Request) -> web.StreamResponse:
    queue, action = request.match_info["queue"], request.match_info["action"]
    await check_action(request, INSPECT + ROW_METHODS[action], queues=[queue])
    form = await request.post()
    state = str(form.get("state", ""))
    ids = [str(i) for i in form.getall("id", [])]
    if not ids:
        raise _back(request, state, error="Select at least one task first.")
    if len(ids) > MAX_SELECTED:
        raise _back(request, state, error=f"Select at most {MAX_SELECTED:,} tasks at once.")
    admin = services(request).admin
    moved, refusals = 0, []
    for task_id in ids:
        try:
            if action == "cancel":
                await admin.cancel(queue, task_id)
            else:
                await admin.move(action, queue, task_id)
            moved += 1
        except LeasqError as error:
            refusals.append(error.message)
    done = f"{DONE[action].capitalize()} {moved} task{'' if moved == 1 else 's'}."
    if refusals:
        more = f" (and {len(refusals) - 1} more)" if len(refusals) > 1 else ""
        raise _back(request, state, done=done if moved else "",
                    error=f"{len(refusals)} refused: {refusals[0]}{more}")
    raise _back(request, state, done=done)


async def every(request: web.Request) -> web.StreamResponse:
    queue = request.match_info["queue"]
    action: BulkOperation = request.match_info["action"]  # type: ignore[assignment]
    await check_action(request, INSPECT + BULK_METHODS[action], queues=[queue])
    state = str((await request.post()).get("state", ""))
    try:
        count = await services(request).operations.bulk(action, queue, state, TaskFilter())
    except LeasqError as error:
        raise _back(request, state, error=refused(error)) from None
    raise _back(request, state, done=f"{DONE[action].capitalize()} all {count:,} {state} "
                                     f"task{'' if count == 1 else 's'}.")  # fmt: skip


async def settings(request: web.Request) -> web.StreamResponse:
    queue = request.match_info["queue"]
    await check_action(request, INSPECT + "UpdateQueueSettings", queues=[queue])
    form = await request.post()
    state = str(form.get("state", ""))
    service = services(request).queue_settings
    try:
        update = settings_update(form, await service.get(queue))
        await service.update(queue, update)
    except LeasqError as error:
        raise _back(request, state, error=refused(error)) from None
    raise _back(request, state, done=f"Settings of queue {queue} saved.")


async def group(request: web.Request) -> web.StreamResponse:
    queue, action = request.match_info["queue"], request.match_info["action"]
    method = "FlushGroup" if action == "flush" else "DeleteGroup"
    await check_action(request, INSPECT + method, queues=[queue])
    form = await request.post()
    groups = services(request).groups
    try:
        ref = group_ref(queue, str(form.get("type", "")), str(form.get("group", "")))
        if action == "flush":
            flushed = await groups.flush(ref)
            done = (f"Flushed group {ref.group}: {flushed.members} tasks into pending task "
                    f"{flushed.task_id}.")
        else:
            done = f"Deleted group {ref.group} and its {await groups.delete(ref)} tasks."
    except LeasqError as error:
        raise _back(request, "aggregating", error=refused(error)) from None
    raise _back(request, "aggregating", done=done)
