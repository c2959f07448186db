"""The compose file's commands run as written, outside Docker: its two brokers (their flags and
variables, with the Redis URL and ports swapped for the test's) share the private Redis and
answer the image's health check, the dashboard and /metrics; its worker command, run from a
directory laid out as the container's, counts a read enqueued through the other broker."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml  # type: ignore[import-untyped, unused-ignore]
from broker_process import BrokerHandle, broker_environment, stable_port
from deploy_testing import DEPLOY, option
from process_checks import check_stopped, fail_on_problems, unexpected_lines
from waiting import eventually

from examples.blog import stats_db
from examples.blog.tasks import TRACK_READ, TrackRead
from leasq_sdk import Client

SERVICES: dict[str, dict[str, Any]] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())[
    "services"
]
WAIT_SECONDS = 30.0


def swapped(argv: list[str], flag: str, value: str) -> list[str]:
    """``argv`` with the value of ``flag`` replaced (it must be there)."""
    assert option(argv, flag) is not None, (flag, argv)
    index = argv.index(flag)
    return [*argv[: index + 1], value, *argv[index + 2 :]]


@pytest.fixture
def compose_brokers(redis_url: str, tmp_path: Path) -> Iterator[dict[str, BrokerHandle]]:
    """The compose brokers, each with its command and environment, on the test's Redis."""
    handles: dict[str, BrokerHandle] = {}
    try:
        for name, service in SERVICES.items():
            if service.get("command", [])[:2] != ["leasq", "serve"]:
                continue
            flags = swapped(service["command"][2:], "--http-listen", f"127.0.0.1:{stable_port()}")
            env = {**service["environment"], "LEASQ_REDIS_URL": redis_url}
            handle = BrokerHandle(flags, workdir=tmp_path / name, redis_url=redis_url,
                                  data_dir=None, env=broker_environment(env))  # fmt: skip
            handle.workdir.mkdir()
            handles[name] = handle
            handle.start()
        yield handles
    finally:
        for handle in handles.values():
            handle.stop()
            check_stopped(handle)


def start_worker(broker: str, workdir: Path) -> tuple[subprocess.Popen[bytes], Path, str]:
    """The compose worker's command, from a directory holding ``examples`` as its bind mount
    does; returns the process, its SQLite file and the address of its /metrics."""
    service = SERVICES["analytic-worker"]
    (mount,) = [v for v in service["volumes"] if v.endswith(":ro")]
    source, target, _ = mount.split(":")
    root = workdir / "root"
    link = root / Path(target).relative_to(service["working_dir"])
    link.parent.mkdir(parents=True)
    link.symlink_to((DEPLOY / source).resolve())
    metrics = f"127.0.0.1:{stable_port()}"
    command = swapped(service["command"], "--metrics-listen", metrics)
    database = workdir / "blog.db"
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("LEASQ_", "BLOG_"))}
    env = {**inherited, **service["environment"], "LEASQ_BROKER": broker, "BLOG_DB": str(database)}
    leasq = Path(sys.executable).with_name("leasq")
    with (workdir / "worker.log").open("wb") as log:
        process = subprocess.Popen([str(leasq), *command[1:]], cwd=root, env=env,
                                   stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    return process, database, metrics


def stop_worker(process: subprocess.Popen[bytes], log: Path) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=WAIT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    problems = unexpected_lines(log.read_text(errors="replace").splitlines(), ())
    if process.returncode != 0:
        problems.append(f"worker exited with code {process.returncode}")
    fail_on_problems(problems, "the compose worker")


def test_the_compose_brokers_answer_health_dashboard_and_metrics(
    compose_brokers: dict[str, BrokerHandle],
) -> None:
    assert len(compose_brokers) == 2
    test = SERVICES["broker-1"]["healthcheck"]["test"]
    assert test[1:3] == ["python", "/usr/local/bin/leasq-healthcheck"]
    for handle in compose_brokers.values():
        checked = subprocess.run([sys.executable, str(DEPLOY / "healthcheck.py"), handle.address],
                                 capture_output=True, text=True, timeout=WAIT_SECONDS)  # fmt: skip
        assert (checked.returncode, checked.stdout.strip()) == (0, "serving"), checked.stderr
        http = f"http://{option(handle.flags, '--http-listen')}"
        assert httpx.get(f"{http}/", timeout=10, follow_redirects=True).status_code == 200
        assert "# TYPE leasq_" in httpx.get(f"{http}/metrics", timeout=10).text


async def test_the_compose_worker_counts_a_read_enqueued_through_the_other_broker(
    compose_brokers: dict[str, BrokerHandle], tmp_path: Path
) -> None:
    first, second = compose_brokers.values()
    process, database, metrics = start_worker(first.address, tmp_path)
    try:
        with Client(second.address) as client:
            TRACK_READ.enqueue(client, TrackRead("compose-read-1", post_id=7))

        async def read_counted() -> int:
            if not database.exists():
                return 0
            with sqlite3.connect(database) as conn:
                try:
                    return stats_db.post_stats(conn, 7).reads
                except sqlite3.OperationalError:  # the schema is not there yet
                    return 0

        assert await eventually(read_counted, WAIT_SECONDS, "the read counted") == 1
        (test,) = [word for word in SERVICES["analytic-worker"]["healthcheck"]["test"]
                   if "urlopen" in word]  # fmt: skip
        probe = test.replace("127.0.0.1:9465", metrics)
        assert probe != test
        checked = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-c", probe], capture_output=True, timeout=30
        )
        assert checked.returncode == 0, checked.stderr
    finally:
        stop_worker(process, tmp_path / "worker.log")
