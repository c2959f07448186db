"""The task screen: every recorded field, payload and result shown readably, what the broker
knows of its attempts, why it is not running, and the moves its state allows."""

from __future__ import annotations

from aiohttp import web

from leasq_broker.dashboard.access import check_action, viewer
from leasq_broker.dashboard.rendering import render
from leasq_broker.dashboard.routes import Routes, services
from leasq_broker.dashboard.views.answers import problem, queue_url, refused, task_url
from leasq_broker.dashboard.views.queue import ROW_ACTIONS
from leasq_broker.dashboard.views.queue_actions import DONE, INSPECT, ROW_METHODS
from leasq_broker.dashboard.views.task_fields import shown, task_fields
from leasq_broker.errors import LeasqError, TaskNotFound


def register(routes: Routes) -> None:
    routes.get("queues/{queue}/tasks/{task}", task_page)
    routes.post("queues/{queue}/tasks/{task}/{action:run|archive|delete|cancel}", task_action)


async def task_page(request: web.Request) -> web.StreamResponse:
    queue, task_id = request.match_info["queue"], request.match_info["task"]
    who = viewer(request, queues=[queue])
    admin = services(request).admin
    try:
        stored = await admin.get_task(queue, task_id)
        block = await admin.blocked(stored)
    except LeasqError as error:
        return problem(request, who, error)
    task = task_fields(stored)
    return render(
        request, "task.html", who, task=task, block=block, payload=shown(task.payload),
        result=shown(task.result), actions=ROW_ACTIONS.get(task.state, ()),
        flash=request.query.get("done", ""),
        error=request.query.get("error", ""),
    )


async def task_action(request: web.Request) -> web.StreamResponse:
    queue, task_id = request.match_info["queue"], request.match_info["task"]
    action = request.match_info["action"]
    await check_action(request, INSPECT + ROW_METHODS[action], queues=[queue])
    admin = services(request).admin
    try:
        if action == "cancel":
            await admin.cancel(queue, task_id)
        else:
            await admin.move(action, queue, task_id)
    except TaskNotFound as error:
        raise web.HTTPSeeOther(queue_url(request, queue, error=error.message)) from None
    except LeasqError as error:
        raise web.HTTPSeeOther(task_url(request, queue, task_id, error=refused(error))) from None
    done = f"{DONE[action].capitalize()} task {task_id}."
    if action == "delete":
        raise web.HTTPSeeOther(queue_url(request, queue, done=done))
    raise web.HTTPSeeOther(task_url(request, queue, task_id, done=done))
