"""Screenshots of every dashboard screen for the docs: ``docs/img/dashboard-<screen>.png``.

Run: ``.venv/bin/python scripts/dashboard_screenshots.py`` (``--out docs/img``). Needs
redis-server and Chromium (``/usr/bin/chromium``) with Playwright for Python.

It starts a private Redis and a broker with the dashboard and a token, and seeds it the way an
application would: tasks enqueued, leased, acked and failed through the gRPC API, a paused
queue, a schedule, and a Python worker (``leasq worker``) running slow e-mail tasks so the
workers screen has something to show. The broker counts processed/failed per UTC day only for
today; the past 29 days of those counters are written straight into Redis here, so that the
daily chart shows a month.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import redis
from google.protobuf.duration_pb2 import Duration
from playwright.sync_api import sync_playwright

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import broker_service_pb2_grpc as pb_grpc
from leasq.v1 import inspect_service_pb2 as ipb
from leasq.v1 import inspect_service_pb2_grpc as ipb_grpc
from leasq.v1 import schedule_service_pb2 as spb
from leasq.v1 import schedule_service_pb2_grpc as spb_grpc
from leasq.v1 import task_pb2
from leasq_broker.keys import Keys

ROOT = Path(__file__).resolve().parent.parent
HOUR = Duration(seconds=3600)
DAY = Duration(seconds=86400)
WORKER_MODULE = '''
import asyncio
from leasq_worker import Registry, Task

registry = Registry()


@registry.handler("email:")
async def send(task: Task) -> None:
    await asyncio.sleep(600)
'''


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Any, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not happen within {seconds:g} s")
        time.sleep(0.1)


@contextlib.contextmanager
def process(command: list[str], log: Path, env: dict[str, str] | None = None
            ) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        child = subprocess.Popen(command, stdout=out, stderr=out, env=env)
    try:
        yield child
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(20)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


class Seeder:
    """Seeds the broker through its gRPC API, as producers and workers would."""

    def __init__(self, channel: grpc.Channel, token: str) -> None:
        self.stub = pb_grpc.BrokerServiceStub(channel)
        self.inspect = ipb_grpc.InspectServiceStub(channel)
        self.schedules = spb_grpc.ScheduleServiceStub(channel)
        self.md = (("authorization", f"Bearer {token}"),)

    def enqueue(self, queue: str, kind: str, n: int, **spec: Any) -> None:
        tasks = [task_pb2.TaskSpec(type=kind, queue=queue, payload=payload(kind, i), **spec)
                 for i in range(n)]
        self.stub.EnqueueBatch(pb.EnqueueBatchRequest(tasks=tasks), metadata=self.md)

    def settle(self, queue: str, acked: int, retried: int, archived: int) -> None:
        """Lease and settle tasks: ``acked`` completed, ``retried`` and ``archived`` failed."""
        leased = self.stub.Lease(pb.LeaseRequest(
            worker_id="batch-runner", queues=[pb.QueueWeight(queue=queue, weight=1)],
            max_tasks=acked + retried + archived, lease_duration=HOUR), metadata=self.md).tasks
        refs = [pb.LeaseRef(queue=queue, task_id=t.id, lease_token=t.lease_token) for t in leased]
        if acked:
            self.stub.Ack(pb.AckRequest(worker_id="batch-runner", items=[
                pb.AckItem(lease=r, result=b'{"ok": true}') for r in refs[:acked]]),
                metadata=self.md)
        errors = [("TimeoutError", "upstream did not answer within 10 s"),
                  ("ConnectionError", "connection refused by smtp.example.com:587")]
        items = [pb.NackItem(lease=r, action=pb.NACK_ACTION_RETRY, retry_after=HOUR,
                             error=errors[n % 2][1], error_type=errors[n % 2][0])
                 for n, r in enumerate(refs[acked:acked + retried])]
        items += [pb.NackItem(lease=r, action=pb.NACK_ACTION_ARCHIVE,
                              error="payload names no customer", error_type="ValueError")
                  for r in refs[acked + retried:]]
        if items:
            self.stub.Nack(pb.NackRequest(worker_id="batch-runner", items=items), metadata=self.md)


def payload(kind: str, n: int) -> bytes:
    if kind.startswith("email"):
        return f'{{"to": "user{n}@example.com", "template": "welcome", "locale": "en"}}'.encode()
    if kind.startswith("payment"):
        return f'{{"invoice": "INV-{20400 + n}", "amount_cents": {1999 + n * 250}}}'.encode()
    return f'{{"report": "weekly-sales", "region": "eu-{n % 4}"}}'.encode()


def seed(seeder: Seeder) -> None:
    """A handful of queues with tasks in every state, one paused, a schedule."""
    kept = {"retention": DAY}
    for queue, kind, done, retried, archived in (
        ("emails", "email:welcome", 40, 6, 3), ("payments", "payment:capture", 60, 2, 1),
        ("reports", "report:weekly", 12, 1, 0), ("webhooks", "webhook:deliver", 25, 3, 2),
    ):
        seeder.enqueue(queue, kind, done + retried + archived, **kept)
        seeder.settle(queue, done, retried, archived)
    seeder.enqueue("emails", "email:welcome", 126)
    seeder.enqueue("emails", "email:digest", 30, process_in=HOUR)
    seeder.enqueue("payments", "payment:capture", 12)
    seeder.enqueue("payments", "payment:refund", 4, process_in=DAY)
    seeder.enqueue("reports", "report:weekly", 8)
    seeder.enqueue("reports", "report:monthly", 25, process_in=DAY)
    seeder.enqueue("webhooks", "webhook:deliver", 57)
    seeder.enqueue("critical", "payment:alert", 2)
    seeder.inspect.PauseQueue(ipb.PauseQueueRequest(queue="webhooks"), metadata=seeder.md)
    for name, spec, kind in (("weekly-sales-report", "0 6 * * MON", "report:weekly"),
                             ("hourly-digest", "@every 1h", "report:digest")):
        template = spb.TaskTemplate(type=kind, queue="reports", payload=b'{"region": "eu"}')
        seeder.schedules.UpsertSchedule(spb.UpsertScheduleRequest(schedule=spb.Schedule(
            name=name, spec=spec, time_zone="UTC", template=template)), metadata=seeder.md)
    seeder.schedules.TriggerSchedule(spb.TriggerScheduleRequest(name="hourly-digest"),
                                     metadata=seeder.md)


def past_days(redis_url: str, queues: list[str], days: int = 29) -> None:
    """Daily processed/failed counters of the past ``days`` days (the broker counts today)."""
    keys, client, rng = Keys(), redis.Redis.from_url(redis_url), random.Random(7)
    today = datetime.now(UTC).date()
    for n in range(1, days + 1):
        day = (today - timedelta(days=n)).isoformat()
        for q, base in zip(queues, (52, 70, 14, 33), strict=False):
            done = int(base * (1 + 0.3 * ((n * 7) % 5 - 2) / 2) * rng.uniform(0.8, 1.2))
            client.set(keys.processed(q, day), done, ex=90 * 86400)
            client.set(keys.failed(q, day), int(done * rng.uniform(0.0, 0.05)), ex=90 * 86400)
    client.close()


def shoot(url: str, token: str, out: Path, task: tuple[str, str]) -> None:
    screens = [("overview", ""), ("queue", "queues/emails"),
               ("task", f"queues/{task[0]}/tasks/{task[1]}"), ("workers", "workers"),
               ("schedules", "schedules"), ("redis", "redis")]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium") or "/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_context(viewport={"width": 1360, "height": 860}).new_page()
        page.goto(url)
        page.screenshot(path=out / "dashboard-login.png")
        page.fill("input[name=token]", token)
        page.click("button[type=submit]")
        page.wait_for_url(url)
        for name, path in screens:
            page.goto(url + path)
            page.wait_for_load_state("networkidle")
            if name == "overview":
                page.wait_for_function("window.Chart && Chart.getChart('history-chart')")
            # Long tables are cut at the window: the top of a page shows what it is.
            page.screenshot(path=out / f"dashboard-{name}.png", full_page=name == "overview")
            print(f"saved {out / f'dashboard-{name}.png'}")
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="leasq-shots-"))
    token = secrets.token_urlsafe(24)
    rport, gport, hport = free_port(), free_port(), free_port()
    redis_url = f"redis://127.0.0.1:{rport}/0"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEASQ_")}
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(process(["redis-server", "--port", str(rport), "--save", "",
                                         "--appendonly", "no", "--dir", str(work)],
                                        work / "redis.log"))  # fmt: skip
            wait_until(lambda: listening(rport), "redis-server listening")
            stack.enter_context(process(
                [sys.executable, "-m", "leasq_broker", "serve", "--redis-url", redis_url,
                 "--listen", f"127.0.0.1:{gport}", "--http-listen", f"127.0.0.1:{hport}",
                 "--dashboard", "--auth-token", token], work / "broker.log", env))
            wait_until(lambda: listening(hport) and listening(gport), "the broker serving")
            channel = stack.enter_context(grpc.insecure_channel(f"127.0.0.1:{gport}"))
            seeder = Seeder(channel, token)
            seed(seeder)
            past_days(redis_url, ["emails", "payments", "reports", "webhooks"])
            (work / "shots_worker.py").write_text(WORKER_MODULE)
            stack.enter_context(process(
                [sys.executable, "-m", "leasq_worker", "shots_worker:registry", "--queue",
                 "emails", "--concurrency", "4", "--broker", f"127.0.0.1:{gport}", "--token",
                 token], work / "worker.log", {**env, "PYTHONPATH": os.pathsep.join(
                     [str(work), env.get("PYTHONPATH", "")])}))  # fmt: skip
            wait_until(lambda: busy_worker(seeder), "the worker running 4 tasks")
            retry = seeder.inspect.ListTasks(ipb.ListTasksRequest(
                queue="emails", state=task_pb2.TASK_STATE_RETRY, page_size=1),
                metadata=seeder.md).tasks[0]  # fmt: skip
            shoot(f"http://127.0.0.1:{hport}/", token, out, ("emails", retry.id))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def busy_worker(seeder: Seeder) -> bool:
    workers = seeder.inspect.ListWorkers(ipb.ListWorkersRequest(), metadata=seeder.md).workers
    stats = seeder.inspect.GetQueueStats(ipb.GetQueueStatsRequest(queue="emails"),
                                         metadata=seeder.md).stats  # fmt: skip
    return bool(workers) and stats.active >= 4


if __name__ == "__main__":
    main()
