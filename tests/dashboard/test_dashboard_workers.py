"""The workers screen with a real ``leasq worker`` process: listed with its meta, queues and the
task it runs; quiet from the page stops its leasing, stop makes it exit 0; readers and unknown
workers are refused at the HTTP level.

The worker's ``wait:sync`` handler (tests/worker/worker_apps/events.py) runs until the test
pushes to a Redis list, so the task is held exactly as long as the test wants.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterable, Iterator
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from dashboard_testing import ADMIN, READER, Served, ServedFactory, sign_in, tokens_file
from playwright.sync_api import expect
from process_checks import Expectations, unexpected_lines, watch

from leasq.v1 import broker_service_pb2 as bpb
from leasq.v1 import inspect_service_pb2 as ipb
from leasq.v1 import task_pb2

WORKER_APPS = Path(__file__).parent.parent / "worker"
SETTLE = 15.0
KEEP = {"seconds": 300}  # a completed task stays readable


class WorkerProcess:
    """``python -m leasq_worker worker_apps.events:registry`` with JSON logs, driven from sync
    code (browser tests cannot run an event loop); checked after the test like every process."""

    def __init__(self, broker: str, queue: str, redis_url: str, events: str, worker_id: str):
        env = {**os.environ, "WORKER_TEST_REDIS": redis_url, "WORKER_TEST_EVENTS": events,
               "WORKER_TEST_NAME": worker_id,
               "PYTHONPATH": os.pathsep.join([str(WORKER_APPS), os.environ.get("PYTHONPATH", "")])}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "leasq_worker", "worker_apps.events:registry",
             "--broker", broker, "--queue", queue, "--log-format", "json",
             "--worker-id", worker_id, "--concurrency", "3", "--heartbeat-interval", "0.5",
             "--shutdown-timeout", "20"],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True)  # fmt: skip
        self.lines: list[str] = []
        self.expectations = Expectations()
        self._changed = threading.Condition()
        self._checked = 0
        self._exit_checked = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        watch(self)

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_log(self, event: str, within: float = SETTLE) -> None:
        """Until a log record with this event is written (fails after ``within`` seconds)."""

        def logged() -> bool:
            return any(_event(line) == event for line in self.lines) \
                or not self._reader.is_alive()

        with self._changed:
            self._changed.wait_for(logged, within)
            assert any(_event(line) == event for line in self.lines), \
                f"no {event!r} logged within {within}s: {self.lines[-5:]}"

    def stop_now(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
            self._exit_checked = True

    def describe(self) -> str:
        return f"worker subprocess {self.process.pid}"

    @property
    def finished(self) -> bool:
        return self._exit_checked and not self._reader.is_alive()

    def take_problems(self, patterns: Iterable[str] = ()) -> list[str]:
        problems: list[str] = []
        code = self.process.poll()
        if code is not None and not self._exit_checked:
            self._exit_checked = True
            problem = self.expectations.exit_problem(code, "exited")
            problems += [problem] if problem else []
        new, self._checked = self.lines[self._checked :], len(self.lines)
        problems += unexpected_lines(new, (*patterns, *self.expectations.logs))
        self.expectations.reset()
        return problems


def _event(line: str) -> str:
    try:
        return str(json.loads(line).get("event", ""))
    except ValueError:
        return ""


@pytest.fixture
def events(redis_url: str) -> Iterator[tuple[redis.Redis, str]]:
    """The Redis list the worker's handlers report to (``start``/``done`` per task)."""
    # A read may wait a whole BLPOP: longer than the client's default socket timeout.
    client = redis.Redis.from_url(redis_url, socket_timeout=SETTLE + 5)
    yield client, f"dashboard-worker-events:{uuid.uuid4().hex[:8]}"
    client.close()


def _next_event(events: tuple[redis.Redis, str]) -> tuple[str, str]:
    client, key = events
    item = client.blpop([key], timeout=SETTLE)
    assert item is not None, f"no worker event within {SETTLE}s"
    what, task_id, _, _ = item[1].decode().split()
    return what, task_id


def _enqueue(served: Served, task_type: str, queue: str, **fields: Any) -> str:
    spec = task_pb2.TaskSpec(type=task_type, queue=queue, **fields)
    return str(served.stub.Enqueue(bpb.EnqueueRequest(task=spec)).task.id)


def _state(served: Served, queue: str, task_id: str) -> int:
    request = ipb.GetTaskRequest(queue=queue, task_id=task_id)
    return int(served.inspect.GetTask(request).task.state)


def _command(served: Served, worker_id: str) -> int:
    workers = served.inspect.ListWorkers(ipb.ListWorkersRequest()).workers
    return int(next(w.command for w in workers if w.worker_id == worker_id))


def test_a_running_worker_and_its_task_show_then_quiet_and_stop_from_the_page_steer_it(
    page: Any, dashboard: Served, redis_url: str, events: tuple[redis.Redis, str]
) -> None:
    queue, worker_id = f"q-{uuid.uuid4().hex[:8]}", f"w-{uuid.uuid4().hex[:8]}"
    held = _enqueue(dashboard, "wait:sync", queue, retention=KEEP)
    worker = WorkerProcess(dashboard.broker.address, queue, redis_url, events[1], worker_id)
    try:
        assert _next_event(events) == ("start", held)
        page.goto(dashboard.at("workers"))
        row = page.locator(f"tr[data-worker='{worker_id}']")
        expect(row.locator(f"a[href$='queues/{queue}/tasks/{held}']")).to_have_text(held)
        expect(row.locator(".running")).to_contain_text("running")
        expect(row.locator(".badge.state")).to_have_text("running")
        expect(row.locator("td.busy")).to_have_text("1 / 3")
        expect(row).to_contain_text(f"pid {worker.process.pid}")
        expect(row).to_contain_text(queue)

        row.locator("button", has_text="Quiet").click()
        expect(page.locator(".flash")).to_contain_text(f"Worker {worker_id} is quiet")
        expect(row.locator(".badge.state")).to_have_text("quiet")
        assert _command(dashboard, worker_id) == bpb.WORKER_COMMAND_QUIET
        worker.wait_log("quieted by an operator: leasing stopped, held tasks finish")
        later = _enqueue(dashboard, "job", queue)
        events[0].rpush(events[1] + ":release", "go")
        assert _next_event(events) == ("done", held)

        page.once("dialog", lambda dialog: dialog.accept())
        row.locator("button", has_text="Stop").click()
        expect(page.locator(".flash")).to_contain_text(f"Worker {worker_id} is stopping")
        assert worker.process.wait(SETTLE) == 0
        worker.wait_log("worker stopped")
        # Quiet from the page kept the task enqueued after it away from the worker.
        assert _state(dashboard, queue, held) == task_pb2.TASK_STATE_COMPLETED
        assert _state(dashboard, queue, later) == task_pb2.TASK_STATE_PENDING
    finally:
        worker.stop_now()


def test_a_reader_sees_no_worker_buttons_and_cannot_quiet_or_stop(
    dashboard_factory: ServedFactory, tmp_path: Path, page: Any
) -> None:
    served = dashboard_factory(auth_tokens_file=tokens_file(tmp_path), token=ADMIN)
    sign_in(page, served, READER)
    page.wait_for_url(served.url)
    page.goto(served.at("workers"))
    expect(page.locator("h1")).to_have_text("Workers")
    assert page.locator("main form").count() == 0
    for bearer, expected in ((READER, 403), (ADMIN, 404)):
        with httpx.Client(headers={"Authorization": f"Bearer {bearer}"}) as client:
            client.get(served.at("workers")).raise_for_status()
            csrf = client.cookies["leasq_csrf"]
            for action in ("quiet", "stop"):
                answer = client.post(served.at(f"workers/{action}"),
                                     data={"csrf": csrf, "worker_id": "nobody"})
                assert answer.status_code == expected, answer.text
                if expected == 404:
                    assert "no worker 'nobody' called Lease or Heartbeat" in unescape(answer.text)
            blank = client.post(served.at("workers/quiet"), data={"csrf": csrf})
            assert blank.status_code == 403 if bearer == READER else 400
            if bearer == ADMIN:
                assert "worker_id: is required" in unescape(blank.text)
