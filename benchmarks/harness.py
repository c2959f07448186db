"""Starts a private redis-server and a real `leasq serve` for benchmarks, and stops them."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Stack:
    """A running Redis + broker pair."""

    redis_url: str
    address: str
    workdir: Path


def _wait_for(path: Path, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while not path.exists() or not path.read_text().strip():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.02)


@contextlib.contextmanager
def private_redis(workdir: Path) -> Iterator[str]:
    """A redis-server without persistence on a free port; yields its URL (database 0)."""
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", str(workdir)]  # fmt: skip
    redis = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.1):
                break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        redis.terminate()
        redis.wait(10)


@contextlib.contextmanager
def broker_on(redis_url: str, workdir: Path, *broker_flags: str) -> Iterator[str]:
    """A `leasq serve` on an existing Redis; yields its gRPC address."""
    ready = workdir / "ready"
    ready.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEASQ_")}
    command = [sys.executable, "-m", "leasq_broker", "serve", "--redis-url", redis_url,
               "--listen", "127.0.0.1:0", "--ready-file", str(ready), "--log-level", "warning",
               *broker_flags]  # fmt: skip
    broker = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(workdir / "broker.log", "ab"),
    )
    try:
        _wait_for(ready, broker, "broker")
        yield ready.read_text().strip()
    finally:
        broker.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            broker.wait(15)
        broker.kill()
        broker.wait()


@contextlib.contextmanager
def running_stack(*broker_flags: str) -> Iterator[Stack]:
    """Redis (no persistence) on a free port and one broker on it, for the block's duration."""
    workdir = Path(tempfile.mkdtemp(prefix="leasq-bench-"))
    try:
        with private_redis(workdir) as url, broker_on(url, workdir, *broker_flags) as address:
            yield Stack(url, address, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def print_cpu_table(
    rows: list[tuple[str, str, str, str]], load_before: tuple[float, float, float]
) -> None:
    """The benchmarks' markdown table (scenario, result, broker CPU per task, target), after
    the load averages that tell how quiet the machine was."""
    print(f"load average before/after: {load_before} / {os.getloadavg()}")
    print("| scenario | result | broker CPU us/task | target |\n|---|---|---|---|")
    for name, value, cpu, target in rows:
        print(f"| {name} | {value} | {cpu} | {target} |")
