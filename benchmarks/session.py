"""One system under test on the shared private Redis: its services, workers and counters.

The runner never imports a queue library: producers run as ``peers.driver`` processes and
workers as each system's own worker command, both under the system's interpreter, with the
system's Redis database in ``BENCH_REDIS_URL``. Workers start in their own process group so a
``kill -9`` takes the pool children with them, as a machine crash would.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis
from harness import broker_on
from peers import recorder
from peers.base import PeerInfo

HERE = Path(__file__).resolve().parent


class BenchError(RuntimeError):
    """A measurement that could not complete; reported in the table instead of a figure."""


@dataclass
class Session:
    """A system's database on the private Redis, and its Leasq broker when it needs one."""

    peer: PeerInfo
    redis_url: str
    workdir: Path
    broker: str = ""
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.redis = redis.Redis.from_url(self.redis_url)

    def env(self, n: int = 0) -> dict[str, str]:
        pythonpath = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
        return {
            **os.environ,
            **self.peer.extra_env,
            "PYTHONPATH": pythonpath,
            "BENCH_REDIS_URL": self.redis_url,
            "BENCH_N": str(n),
            "BENCH_LEASQ_ADDRESS": self.broker,
        }

    def drive(
        self, action: str, *names: str, n: int = 0, gap: float = 0.0, timeout: float = 600
    ) -> dict[str, float]:
        """Run one producer process and return its JSON answer."""
        command = [
            self.peer.python(),
            "-m",
            "peers.driver",
            self.peer.module,
            action,
            *names,
            "--n",
            str(n),
            "--gap",
            str(gap),
        ]
        done = subprocess.run(
            command, env=self.env(), cwd=HERE, capture_output=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
            raise BenchError(f"{self.peer.name} {action} failed: {' | '.join(tail)}")
        return json.loads(done.stdout.decode().strip().splitlines()[-1])  # type: ignore[no-any-return]

    def start_worker(self, n: int = 0, tag: str = "worker") -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"{self.peer.module}.{tag}.log", "ab")
        worker = subprocess.Popen(
            self.peer.worker_command(self.redis_url, self.broker),
            env=self.env(n),
            cwd=HERE,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        self.workers.append(worker)
        return worker

    def stop_worker(self, worker: subprocess.Popen[bytes], grace: float = 10) -> None:
        """SIGTERM the worker's group (graceful for every system), SIGKILL what is left."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            worker.wait(grace)
        self.kill_worker(worker)

    def kill_worker(self, worker: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
        if worker in self.workers:
            self.workers.remove(worker)

    def wait_until(
        self,
        reached: object,
        what: str,
        limit: float,
        worker: subprocess.Popen[bytes] | None = None,
        every: float = 0.02,
    ) -> None:
        """Poll ``reached()`` (the measurement's stop condition) until true or ``limit``."""
        deadline = time.monotonic() + limit
        while not reached():  # type: ignore[operator]
            if worker is not None and worker.poll() is not None:
                raise BenchError(
                    f"{self.peer.name} worker exited ({worker.returncode}) before {what}"
                )
            if time.monotonic() > deadline:
                raise BenchError(f"{self.peer.name}: no {what} within {limit:.0f} s")
            time.sleep(every)

    def count(self) -> int:
        return int(self.redis.get(recorder.COUNT) or 0)

    def drain_span(self) -> float:
        first, last = self.redis.mget(recorder.FIRST, recorder.LAST)
        if first is None or last is None:
            raise BenchError(f"{self.peer.name}: drain start or end not recorded")
        return float(last) - float(first)

    def probes(self) -> list[tuple[float, int]]:
        entries = self.redis.lrange(recorder.PROBES, 0, -1)
        return [(float(d), int(p)) for d, p in (e.decode().split() for e in entries)]

    def crashes(self) -> list[float]:
        return [float(e.split()[0]) for e in self.redis.lrange(recorder.CRASHES, 0, -1)]

    def close(self) -> None:
        for worker in list(self.workers):
            self.kill_worker(worker)
        self.redis.close()


@contextlib.contextmanager
def session(peer: PeerInfo, redis_url: str, workdir: Path) -> Iterator[Session]:
    """An empty database for ``peer`` (and a fresh broker for Leasq) for the block."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()
    with contextlib.ExitStack() as stack:
        broker = ""
        if peer.needs_broker:
            broker = stack.enter_context(broker_on(redis_url, workdir))
        current = Session(peer, redis_url, workdir, broker)
        try:
            yield current
        finally:
            current.close()
