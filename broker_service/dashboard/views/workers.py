"""The workers screen: every live worker with its meta, queues, slots and the tasks it runs;
quiet and stop.

Workers are listed as ListWorkers lists them (a worker is live while it called Lease or
Heartbeat within the registry's TTL), a page of workers at a time by id. Quiet and stop are the
QuietWorker and StopWorker calls: the worker learns its command at its next call (at once when
it waits in a long poll).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from aiohttp import web

from leasq_broker.dashboard.access import Viewer, check_action, prefix_of, viewer
from leasq_broker.dashboard.rendering import render
from leasq_broker.dashboard.routes import Routes, services
from leasq_broker.edge.worker_converters import worker_id as valid_worker_id
from leasq_broker.edge.worker_converters import worker_task
from leasq_broker.errors import InvalidField, WorkerNotFound
from leasq_broker.workers.models import Command, WorkerRecord

PAGE_SIZE = 50
# Shown per worker; the rest is counted.
TASKS_SHOWN = 20
STATES = {Command.NONE: "running", Command.QUIET: "quiet", Command.STOP: "stopping"}
COMMANDS = {"quiet": ("/leasq.v1.InspectService/QuietWorker", Command.QUIET),
            "stop": ("/leasq.v1.InspectService/StopWorker", Command.STOP)}  # fmt: skip


@dataclass(frozen=True, slots=True)
class TaskRow:
    queue: str
    task_id: str
    type: str
    leased_at_ms: int | None
    lease_expires_ms: int | None


@dataclass(frozen=True, slots=True)
class WorkerRow:
    """A worker as the page shows it."""

    record: WorkerRecord
    state: str
    tasks: list[TaskRow]
    more_tasks: int

    @property
    def busy(self) -> int:
        return len(self.record.tasks)


def register(routes: Routes) -> None:
    routes.get("workers", workers_page)
    for name in COMMANDS:
        routes.post(f"workers/{name}", quiet if name == "quiet" else stop)
        # A refused action answers on its own URL; reloading it (or the live refresh) lands
        # on the list.
        routes.get(f"workers/{name}", to_list)


def _row(record: WorkerRecord) -> WorkerRow:
    tasks = [TaskRow(t.queue, t.task_id, worker_task(t).type, t.leased_at_ms,
                     t.lease_expires_ms) for t in record.tasks[:TASKS_SHOWN]]  # fmt: skip
    return WorkerRow(record, STATES[record.command], tasks,
                     max(0, len(record.tasks) - TASKS_SHOWN))


async def _page(request: web.Request, who: Viewer, *, status: int = 200,
                error: str | None = None) -> web.Response:
    """The workers page (``?after=<id>`` pages on), with a result or an error message."""
    after = request.query.get("after", "")
    records, token, live = await services(request).workers.page_workers(after, PAGE_SIZE)
    return render(request, "workers.html", who, status=status, error=error,
                  flash=request.query.get("done", "")[:200], workers=[_row(r) for r in records],
                  next_after=token, after=after, live=live)  # fmt: skip


async def workers_page(request: web.Request) -> web.StreamResponse:
    return await _page(request, viewer(request))


async def to_list(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther(f"{prefix_of(request)}workers")


async def quiet(request: web.Request) -> web.StreamResponse:
    return await _command(request, "quiet")


async def stop(request: web.Request) -> web.StreamResponse:
    return await _command(request, "stop")


async def _command(request: web.Request, name: str) -> web.StreamResponse:
    """Give the worker named in the form a command; back to the list with what happened."""
    method, command = COMMANDS[name]
    await check_action(request, method)
    form = await request.post()
    who = viewer(request)
    try:
        worker_id = valid_worker_id(str(form.get("worker_id", "")))
        record = await services(request).workers.give_command(worker_id, command)
    except InvalidField as error:
        return await _page(request, who, status=400, error=error.message)
    except WorkerNotFound as error:
        return await _page(request, who, status=404, error=error.message)
    done = (f"Worker {worker_id} is {STATES[record.command]}: it leases no more tasks"
            if record.command is Command.QUIET else
            f"Worker {worker_id} is stopping: it finishes its tasks and exits")  # fmt: skip
    raise web.HTTPSeeOther(f"{prefix_of(request)}workers?{urlencode({'done': done})}")
