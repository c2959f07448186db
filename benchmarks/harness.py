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
def running_stack(*broker_flags: str) -> Iterator[Stack]:
    """Redis (no persistence) on a free port and one broker on it, for the block's duration."""
    workdir = Path(tempfile.mkdtemp(prefix="leasq-bench-"))
    port = free_port()
    redis = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
    )
    broker: subprocess.Popen[bytes] | None = None
    try:
        ready = workdir / "ready"
        url = f"redis://127.0.0.1:{port}/0"
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.1):
                break
            time.sleep(0.05)
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEASQ_")}
        broker = subprocess.Popen(
            [sys.executable, "-m", "leasq_broker", "serve", "--redis-url", url, "--listen",
             "127.0.0.1:0", "--ready-file", str(ready), "--log-level", "warning", *broker_flags],
            env=env, stdout=subprocess.DEVNULL, stderr=open(workdir / "broker.log", "wb"),
        )
        _wait_for(ready, broker, "broker")
        yield Stack(url, ready.read_text().strip(), workdir)
    finally:
        if broker is not None:
            broker.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                broker.wait(15)
            broker.kill()
        redis.terminate()
        redis.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)
