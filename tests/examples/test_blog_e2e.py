"""The blog example end to end: HTTP app, email and analytic workers, SMTP sink, real broker.

The broker runs on the private test Redis, both workers are ``python -m leasq_worker``
subprocesses, the SMTP sink runs on a thread of this process (so it can be stopped and started
again on its port), and the app is served by uvicorn on a thread. Tests wait for mail with the
sink's condition variable and poll the broker and the stats endpoint, boundedly, where no event
exists.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import uvicorn
from broker_process import BrokerHandle, stable_port
from process_checks import fail_on_problems, unexpected_lines

from examples.blog.app import create_app
from examples.blog.settings import Settings
from examples.blog.smtp_sink import Received, SmtpSink
from examples.blog.tasks import (
    EMAIL_QUEUE,
    NOTIFY_POST,
    SEND_NOTIFICATION,
    NotifyPost,
    SendNotification,
    send_task_id,
)
from leasq_broker.embedded_redis import free_loopback_port
from leasq_sdk import Client, TaskInfo, TaskNotFound, TaskState

REPO = Path(__file__).resolve().parents[2]
ADMIN = {"Authorization": "Bearer test-admin-token"}
WAIT_SECONDS = 30.0
T = TypeVar("T")


def wait_until(
    check: Callable[[], T | None],
    what: str,
    detail: Callable[[], str] = str,
    within: float = WAIT_SECONDS,
) -> T:
    """Poll ``check`` until it returns something other than None (or False).

    On timeout the error names ``what`` and adds ``detail()`` (worker logs, last values).
    """
    deadline = time.monotonic() + within
    while True:
        value = check()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}\n{detail()}")
        time.sleep(0.05)


@dataclass
class BlogStack:
    """Everything the blog runs on, started for one test."""

    settings: Settings
    sink: SmtpSink
    http: httpx.Client
    leasq: Client
    workdir: Path
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start_worker(self, module: str, queue: str) -> None:
        log = (self.workdir / f"{module.rpartition('.')[2]}.log").open("wb")
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("LEASQ_", "BLOG_"))}
        env = {**inherited, **self.settings.to_env(), "PYTHONPATH": str(REPO)}
        command = [
            sys.executable, "-m", "leasq_worker", f"examples.blog.{module}:registry",
            "--broker", self.settings.broker, "--queue", queue, "--concurrency", "4",
            "--log-format", "json", "--shutdown-timeout", "5",
        ]  # fmt: skip
        self.workers.append(subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=log))
        log.close()

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.send_signal(signal.SIGTERM)
        for worker in self.workers:
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()

    def problems(self) -> list[str]:
        """After :meth:`stop_workers`: exits other than 0, error lines and tracebacks logged."""
        found = [f"worker {worker.args[3]} exited with code {worker.returncode}"
                 for worker in self.workers if worker.returncode != 0]  # fmt: skip
        for path in sorted(self.workdir.glob("*.log")):
            lines = path.read_text(errors="replace").splitlines()
            found += [f"{path.name}: {problem}" for problem in unexpected_lines(lines, ())]
        return found

    def logs(self) -> str:
        """The workers' logs, for failure messages."""
        return "\n".join(p.read_text()[-3000:] for p in sorted(self.workdir.glob("*.log")))

    def subscribe(self, *emails: str) -> dict[str, int]:
        """Subscribe each address; their subscriber ids by address."""
        ids = {}
        for address in emails:
            answer = self.http.post("/subscribers", json={"email": address})
            assert answer.status_code == 201, answer.text
            ids[address] = answer.json()["id"]
        return ids

    def publish(self, title: str) -> int:
        answer = self.http.post("/posts", json={"title": title, "body": "..."}, headers=ADMIN)
        assert answer.status_code == 201, answer.text
        assert answer.json()["notification"] == "queued"
        return int(answer.json()["id"])

    def mail_for(self, post_id: int) -> list[Received]:
        """The messages about one post (told apart by their Message-ID)."""
        return [m for m in self.sink.mailbox.messages if about(m, post_id)]

    def wait_mail(self, post_id: int, count: int) -> list[Received]:
        try:
            self.sink.mailbox.wait_for(
                lambda got: sum(about(m, post_id) for m in got) >= count, WAIT_SECONDS
            )
        except TimeoutError as err:
            raise AssertionError(f"{err}\n{self.logs()}") from err
        return self.mail_for(post_id)

    def email_task(self, task_id: str) -> TaskInfo | None:
        try:
            return self.leasq.get_task(EMAIL_QUEUE, task_id)
        except TaskNotFound:
            return None

    def wait_completed(self, task_id: str) -> TaskInfo:
        def completed() -> TaskInfo | None:
            task = self.email_task(task_id)
            return task if task is not None and task.state is TaskState.COMPLETED else None

        return wait_until(completed, f"task {task_id} to complete", self.logs)

    def stats(self, post_id: int) -> dict[str, Any]:
        answer = self.http.get(f"/posts/{post_id}/stats")
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result


def about(received: Received, post_id: int) -> bool:
    return str(received.message["Message-ID"]).startswith(f"<post-{post_id}.")


@contextmanager
def serving(settings: Settings, port: int) -> Iterator[None]:
    """Serve the app with uvicorn on a thread of this process while the block runs."""
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="blog-http", daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started or not thread.is_alive(), "the HTTP app to start")
        assert server.started, "the HTTP app did not start"
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def blog(broker: BrokerHandle, tmp_path: Path) -> Iterator[BlogStack]:
    """The whole blog on ``broker``: sink, HTTP app and both workers, stopped afterwards."""
    # The sink is stopped and started again on its port: keep that out of the ephemeral range.
    http_port, smtp_port = free_loopback_port(), stable_port()
    settings = Settings(
        db_path=tmp_path / "blog.db", broker=broker.address, broker_token=None,
        admin_token="test-admin-token", link_secret="test-link-secret",
        public_url=f"http://127.0.0.1:{http_port}", smtp_host="127.0.0.1", smtp_port=smtp_port,
        mail_from="blog@example.com", retry_base=0.2, retry_cap=1.0,
    )  # fmt: skip
    with ExitStack() as running:
        sink = running.enter_context(SmtpSink("127.0.0.1", smtp_port))
        running.enter_context(serving(settings, http_port))
        http = running.enter_context(httpx.Client(base_url=settings.public_url))
        leasq = running.enter_context(Client(broker.address))
        stack = BlogStack(settings, sink, http, leasq, tmp_path)
        running.callback(stack.stop_workers)
        stack.start_worker("email_worker", "email")
        stack.start_worker("analytic_worker", "analytic")
        yield stack
    fail_on_problems(stack.problems(), "the blog's workers misbehaved")


def check_link(link: str, post_id: int, subscriber_id: int) -> None:
    parts = urlsplit(link)
    assert parts.path.startswith(f"/r/{post_id}.{subscriber_id}.")
    assert parse_qs(parts.query) == {
        "utm_source": ["email"],
        "utm_medium": ["notification"],
        "utm_campaign": [f"post-{post_id}"],
        "sid": [str(subscriber_id)],
    }


def test_a_new_post_mails_each_subscriber_once_and_stats_count_the_clicks_and_reads(
    blog: BlogStack,
) -> None:
    subscribers = blog.subscribe("ada@example.com", "bob@example.com", "cy@example.com")
    refused = blog.http.post("/posts", json={"title": "x", "body": "y"})
    assert refused.status_code == 401
    post_id = blog.publish("Post 1")

    mail = blog.wait_mail(post_id, 3)
    assert sorted(r for m in mail for r in m.recipients) == sorted(subscribers)
    for received in mail:
        (address,) = received.recipients
        sid = subscribers[address]
        assert received.message["Message-ID"] == f"<post-{post_id}.sub-{sid}@example.com>"
        (link,) = received.links
        check_link(link, post_id, sid)
        page = blog.http.get(link, follow_redirects=True)
        assert page.status_code == 200 and page.json()["title"] == "Post 1"
        assert page.history[0].status_code == 302
    assert blog.http.get(f"/posts/{post_id}").status_code == 200  # a direct read, no campaign

    expected = {
        "post_id": post_id, "reads": 4, "clicks": 3, "subscribers_who_clicked": 3,
        "emails_sent": 3,
        "reads_by_utm": [{"utm_source": "email", "utm_medium": "notification",
                          "utm_campaign": f"post-{post_id}", "reads": 3}],
    }  # fmt: skip
    # Deliveries are recorded just after the sink accepted the mail, and the counters move as
    # the analytic worker gets to each event: wait for all of it.
    wait_until(
        lambda: blog.stats(post_id) == expected,
        f"stats {expected}",
        lambda: f"last stats: {blog.stats(post_id)}\n{blog.logs()}",
    )


def test_running_the_fan_out_or_an_email_task_again_sends_nothing_twice(blog: BlogStack) -> None:
    subscribers = blog.subscribe("ada@example.com", "bob@example.com")
    post_id = blog.publish("Post 1")
    blog.wait_mail(post_id, 2)
    for sid in subscribers.values():
        blog.wait_completed(send_task_id(post_id, sid))

    again = blog.http.post(f"/posts/{post_id}/notify", headers=ADMIN)
    assert again.json()["notification"] == "already queued"
    rerun = NOTIFY_POST.enqueue(blog.leasq, NotifyPost(post_id), task_id="rerun")
    assert blog.wait_completed(rerun.id).result == b'{"queued":0,"already_queued":2}'
    # The same email again under another task id, as after a crash before the Ack: the
    # deliveries table stops it.
    sid = subscribers["ada@example.com"]
    resend = SEND_NOTIFICATION.enqueue(blog.leasq, SendNotification(post_id, sid), task_id="resend")
    assert b'"sent":false' in blog.wait_completed(resend.id).result

    assert len(blog.mail_for(post_id)) == 2
    assert blog.stats(post_id)["emails_sent"] == 2


def test_emails_queued_while_smtp_is_down_arrive_once_when_it_is_back(blog: BlogStack) -> None:
    subscribers = blog.subscribe("ada@example.com", "bob@example.com", "cy@example.com")
    blog.sink.stop()
    post_id = blog.publish("Post 1")
    task_ids = [send_task_id(post_id, sid) for sid in subscribers.values()]

    def failed_twice(task_id: str) -> bool:
        task = blog.email_task(task_id)
        return task is not None and task.retried >= 2

    # Every email has failed and been retried with backoff while the sink was down.
    wait_until(lambda: all(map(failed_twice, task_ids)), "every email to fail twice", blog.logs)
    assert blog.sink.mailbox.messages == []

    blog.sink.start()
    mail = blog.wait_mail(post_id, 3)
    for task_id in task_ids:
        assert b'"sent":true' in blog.wait_completed(task_id).result

    assert len(blog.mail_for(post_id)) == 3
    assert sorted(r for m in mail for r in m.recipients) == sorted(subscribers)
    assert blog.stats(post_id)["emails_sent"] == 3
