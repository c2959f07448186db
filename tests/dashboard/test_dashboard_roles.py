"""An audit of the whole dashboard at the HTTP level: every POST route the dashboard registers
refuses a reader (with a valid CSRF value) and refuses anyone without the CSRF value, and a
reader's pages offer no changing form to submit but "Sign out".

The routes are read from the dashboard itself (``site.install`` on a bare aiohttp app), so a
screen added later is audited without touching this test. The broker is seeded so that every
address names things that exist (a queue with tasks, an active task held by a worker, a
schedule): a refusal then comes from the access check, not from a missing queue.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from itertools import product
from pathlib import Path
from typing import cast

import httpx
import pytest
from aiohttp import web
from dashboard_testing import ADMIN, READER, Served, ServedFactory, tokens_file
from google.protobuf import duration_pb2

from leasq.v1 import broker_service_pb2 as bpb
from leasq.v1 import inspect_service_pb2 as ipb
from leasq.v1 import schedule_service_pb2 as spb
from leasq.v1 import task_pb2
from leasq_broker.dashboard import site
from leasq_broker.dashboard.services import DashboardServices

QUEUE, SCHEDULE, WORKER = "audit", "audit-schedule", "audit-worker"
# Routes that are not actions on the broker: any visitor may sign in and out.
SESSION_ROUTES = {"/login", "/logout"}


def _routes(method: str) -> list[tuple[str, str]]:
    """(formatter, regex pattern) of every ``method`` route of the dashboard installed at ``/``
    (static files left out). Only the route table is built: no handler runs."""
    app = web.Application()
    site.install(app, cast(DashboardServices, None), "/")
    found: list[tuple[str, str]] = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("formatter") or info.get("path")
        if route.method == method and path is not None:
            pattern = info.get("pattern")
            found.append((str(path), pattern.pattern if pattern is not None else ""))
    return found


def _addresses(formatter: str, pattern: str, values: dict[str, str]) -> Iterator[str]:
    """Every address of a route: a placeholder matching a fixed set of words (``pause|resume``)
    takes each of them; any other takes the seeded value of its name."""
    names = re.findall(r"{(\w+)}", formatter)
    choices: list[list[str]] = []
    for name in names:
        found = re.search(rf"\(\?P<{name}>([\w|]+)\)", pattern)
        choices.append(found.group(1).split("|") if found else [values[name]])
    for picked in product(*choices):
        yield formatter.format(**dict(zip(names, picked, strict=True)))


def _every(method: str, values: dict[str, str]) -> list[str]:
    return [address for formatter, pattern in _routes(method)
            for address in _addresses(formatter, pattern, values)]  # fmt: skip


@pytest.fixture
def seeded(dashboard_factory: ServedFactory, tmp_path: Path) -> tuple[Served, dict[str, str]]:
    """A guarded broker with a queue holding a pending task, an active one held by a worker,
    and a schedule; the values that fill the routes' placeholders."""
    served = dashboard_factory(auth_tokens_file=tokens_file(tmp_path), token=ADMIN)
    md = served.metadata
    held = served.stub.Enqueue(bpb.EnqueueRequest(task=task_pb2.TaskSpec(
        type="audit.held", queue=QUEUE)), metadata=md).task.id
    leased = served.stub.Lease(bpb.LeaseRequest(
        worker_id=WORKER, queues=[bpb.QueueWeight(queue=QUEUE, weight=1)], max_tasks=1,
        lease_duration=duration_pb2.Duration(seconds=600)), metadata=md).tasks
    assert [t.id for t in leased] == [held]
    pending = served.stub.Enqueue(bpb.EnqueueRequest(task=task_pb2.TaskSpec(
        type="audit.pending", queue=QUEUE)), metadata=md).task.id
    template = spb.TaskTemplate(type="audit.fire", queue=QUEUE)
    served.schedules.UpsertSchedule(spb.UpsertScheduleRequest(schedule=spb.Schedule(
        name=SCHEDULE, spec="0 3 * * *", template=template)), metadata=md)
    values = {"queue": QUEUE, "task": pending, "task_id": pending, "id": pending,
              "name": SCHEDULE, "worker": WORKER, "worker_id": WORKER, "held": held}
    return served, values


def _form(values: dict[str, str], csrf: str | None) -> dict[str, str]:
    """What an action form could carry: the seeded ids under the usual field names."""
    form = {"id": values["task"], "worker_id": WORKER, "token": READER}
    if csrf is not None:
        form["csrf"] = csrf
    return form


def _unchanged(served: Served, values: dict[str, str]) -> None:
    """Nothing the refused actions name has changed."""
    md = served.metadata
    stats = served.inspect.GetQueueStats(ipb.GetQueueStatsRequest(queue=QUEUE),
                                         metadata=md).stats  # fmt: skip
    assert (stats.pending, stats.active, stats.paused) == (1, 1, False)
    for task_id, state in ((values["task"], task_pb2.TASK_STATE_PENDING),
                           (values["held"], task_pb2.TASK_STATE_ACTIVE)):
        got = served.inspect.GetTask(ipb.GetTaskRequest(queue=QUEUE, task_id=task_id),
                                     metadata=md).task  # fmt: skip
        assert got.state == state
    schedule = served.schedules.GetSchedule(spb.GetScheduleRequest(name=SCHEDULE),
                                            metadata=md).schedule  # fmt: skip
    assert not schedule.paused and not schedule.HasField("last_fire")
    workers = served.inspect.ListWorkers(ipb.ListWorkersRequest(), metadata=md).workers
    assert [(w.worker_id, w.command) for w in workers] == [
        (WORKER, bpb.WORKER_COMMAND_UNSPECIFIED)]


def test_every_dashboard_action_refuses_a_reader_with_a_valid_csrf_value(
    seeded: tuple[Served, dict[str, str]]
) -> None:
    served, values = seeded
    actions = [a for a in _every("POST", values) if a not in SESSION_ROUTES]
    assert {"/workers/quiet", f"/schedules/{SCHEDULE}/trigger", f"/queues/{QUEUE}/pause"} \
        <= set(actions), "the audit found the actions of every screen"
    with httpx.Client(headers={"Authorization": f"Bearer {READER}"}) as client:
        client.get(served.url).raise_for_status()
        csrf = client.cookies["leasq_csrf"]
        for address in actions:
            answer = client.post(served.at(address), data=_form(values, csrf))
            assert answer.status_code == 403, f"POST {address}: {answer.status_code}"
            assert "CSRF" not in answer.text, f"POST {address} refused for CSRF, not the role"
    _unchanged(served, values)


def test_no_dashboard_route_answers_a_post_without_the_csrf_value(
    seeded: tuple[Served, dict[str, str]]
) -> None:
    served, values = seeded
    with httpx.Client(headers={"Authorization": f"Bearer {ADMIN}"}) as client:
        client.get(served.url).raise_for_status()
        csrf = client.cookies["leasq_csrf"]
        for address in _every("POST", values):
            for sent in (None, "not-the-cookie-value"):
                answer = client.post(served.at(address), data=_form(values, sent))
                assert answer.status_code == 403, f"POST {address} (csrf {sent}): " \
                    f"{answer.status_code}"
        # Without the cookie, even the right value in the form is refused.
        client.cookies.clear()
        for address in _every("POST", values):
            answer = client.post(served.at(address), data=_form(values, csrf))
            assert answer.status_code == 403, f"POST {address} without the cookie"
    _unchanged(served, values)


class _Forms(HTMLParser):
    """The POST forms of a page: their action and whether anything in them submits them
    (a button without ``type`` or of type submit, an input of type submit or image)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, bool]] = []
        self._inside: int | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if tag == "form" and found.get("method", "get").lower() == "post":
            self._inside = len(self.forms)
            self.forms.append((found.get("action", ""), False))
        submits = (tag == "button" and found.get("type", "submit").lower() == "submit") or (
            tag == "input" and found.get("type", "").lower() in ("submit", "image"))
        if submits and self._inside is not None and "disabled" not in found:
            self.forms[self._inside] = (self.forms[self._inside][0], True)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._inside = None


def _post_forms(html: str) -> list[tuple[str, bool]]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


def test_a_readers_pages_have_no_changing_form_but_sign_out(
    seeded: tuple[Served, dict[str, str]]
) -> None:
    served, values = seeded
    pages = [a for a in _every("GET", values) if a != "/login"]
    assert {"/", "/workers", "/schedules", f"/schedules/{SCHEDULE}", f"/queues/{QUEUE}",
            f"/queues/{QUEUE}/tasks/{values['task']}", "/redis"} <= set(pages)
    tabs = [f"/queues/{QUEUE}?state={state}" for state in ("pending", "active")]
    for token, check in ((READER, True), (ADMIN, False)):
        with httpx.Client(headers={"Authorization": f"Bearer {token}"},
                          follow_redirects=True) as client:  # fmt: skip
            acting: set[str] = set()
            for address in [*pages, *tabs, f"/queues/{QUEUE}/tasks/{values['held']}"]:
                answer = client.get(served.at(address))
                assert answer.status_code == 200, f"GET {address}: {answer.status_code}"
                every = [(action, submits) for action, submits in _post_forms(answer.text)
                         if not action.endswith("/logout")]  # fmt: skip
                if check:
                    assert every == [], f"a reader's page {address} has POST forms: {every}"
                acting.update(action for action, submits in every if submits)
            if not check:  # the parser does find the forms an admin may submit
                assert len(acting) >= 5, acting
