"""The processes of one fault scenario: a Redis to break, brokers, workers, and a ledger.

Every scenario gets its own :class:`FaultLab`: a data Redis (the one faults hit; AOF with
``appendfsync always``, or no persistence at all), a broker on it, worker subprocesses running
``fault_app:registry``, and a ledger Redis (never faulted) where each handler run appends its
task id. Ports, directories and logs are the lab's own, so labs never see each other.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import redis
from broker_process import (
    BrokerHandle,
    ProcessStartError,
    RedisProcess,
    broker_environment,
    log_tail,
    overrides_to_flags,
    stable_port,
)
from process_checks import unexpected_lines, watch

from leasq_broker.embedded_redis import find_redis_server
from leasq_broker.keys import Keys
from leasq_broker.task_records import record_fields
from leasq_sdk import Client, TaskIdConflict, TaskRequest

HERE = Path(__file__).parent
QUEUE = "faults"
TASK_TYPE = "fault:job"
LEDGER_KEY = "fault-ledger"
READY_SECONDS = 30.0


class DataRedis:
    """A redis-server on a fixed loopback port that a scenario may kill, stop and restart."""

    def __init__(self, workdir: Path, *, persistent: bool) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.persistent = persistent
        self.port = stable_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        aof = ["--appendonly", "yes", "--appendfsync", "always"] if self.persistent else [
            "--appendonly", "no"]  # fmt: skip
        self.process = subprocess.Popen(
            [find_redis_server(), "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", *aof, "--dir", str(self.workdir),
             "--logfile", str(self.workdir / "redis.log"), "--daemonize", "no"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + READY_SECONDS
        try:
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    if client.ping():
                        return
                except (redis.ConnectionError, redis.BusyLoadingError):
                    time.sleep(0.02)
        finally:
            client.close()
        raise ProcessStartError("data redis did not start: " + log_tail(self.workdir / "redis.log"))

    def kill(self) -> None:
        """SIGKILL: what the OS page cache holds of the AOF survives, nothing else runs."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM: Redis shuts down cleanly (fsyncs its AOF)."""
        self._signal(signal.SIGTERM)

    def _signal(self, sig: int) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(30)


class WorkerProcess:
    """``python -m leasq_worker fault_app:registry`` with its JSON log in a file.

    Checked after each test (``process_checks``): an exit other than 0 that :meth:`kill` did
    not cause, a stop that had to kill, or an error-level line or traceback fails the test.
    """

    def __init__(self, lab: FaultLab, name: str, concurrency: int) -> None:
        self.name = name
        self.log_path = lab.workdir / f"worker-{name}.log"
        self._killed = False
        self._exit_checked = False
        self._log_checked = 0
        self._problems: list[str] = []
        path = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
        env = {**os.environ, "PYTHONPATH": path,
               "FAULT_LEDGER_URL": lab.ledger.url, "FAULT_LEDGER_KEY": LEDGER_KEY,
               "FAULT_WORK_SECONDS": str(lab.work_seconds)}  # fmt: skip
        command = [sys.executable, "-m", "leasq_worker", "fault_app:registry",
                   "--broker", lab.broker.address, "--queue", QUEUE, "--worker-id", name,
                   "--concurrency", str(concurrency), "--lease-duration", str(lab.lease),
                   "--shutdown-timeout", "5", "--log-format", "json"]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, env=env)  # fmt: skip
        watch(self)
        wait_until(lambda: "worker started" in self.log(), READY_SECONDS,
                   f"worker {name} did not start: {self.log()[-2000:]}")  # fmt: skip

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def send(self, sig: int) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)

    def kill(self) -> None:
        self._killed = True
        self.send(signal.SIGKILL)
        self.process.wait(30)

    def stop(self, timeout: float = 30) -> int:
        self.send(signal.SIGCONT)
        self.send(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._problems.append(f"did not stop within {timeout:g}s of SIGTERM (killed)")
            self.kill()
            return -9

    def describe(self) -> str:
        return f"fault worker {self.name} (log {self.log_path})"

    @property
    def finished(self) -> bool:
        return self._exit_checked

    def take_problems(self, patterns: Iterable[str] = ()) -> list[str]:
        """An unexpected exit, and the error lines logged since the last call."""
        problems, self._problems = self._problems, []
        code = self.process.poll()
        if code is not None and not self._exit_checked:
            self._exit_checked = True
            if code != 0 and not self._killed:
                problems.append(f"exited with code {code} (expected 0)")
        text = self.log()
        complete = text[: text.rfind("\n") + 1]
        new = complete[self._log_checked :]
        self._log_checked += len(new)
        return problems + unexpected_lines(new.splitlines(), patterns)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def wait_until(condition: Callable[[], bool], timeout: float, message: str = "") -> bool:
    """Poll ``condition`` every 20 ms; raise TimeoutError with ``message`` if given, else False."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    if message:
        raise TimeoutError(message)
    return False


class FaultLab:
    """Data Redis, ledger Redis, one broker and the workers of one scenario."""

    def __init__(self, workdir: Path, *, persistent: bool = True, lease: float = 2.0,
                 work_seconds: float = 0.05, grace: float = 3.0) -> None:  # fmt: skip
        self.workdir = workdir
        self.lease = lease
        self.work_seconds = work_seconds
        self.grace = grace
        self.keys = Keys()
        self.ledger = RedisProcess(workdir / "ledger")
        (workdir / "ledger").mkdir(parents=True, exist_ok=True)
        self.ledger.start()
        self.data = DataRedis(workdir / "data", persistent=persistent)
        self.data.start()
        self.brokers: list[BrokerHandle] = []
        self.broker = self.new_broker()
        self.workers: list[WorkerProcess] = []

    def new_broker(self, listen: str | None = None) -> BrokerHandle:
        """A broker on the data Redis (on ``listen`` if given), started."""
        flags = overrides_to_flags({"redis_url": self.data.url, "log_format": "json",
                                    "grace": self.grace})  # fmt: skip
        workdir = self.workdir / f"broker-{len(self.brokers)}"
        workdir.mkdir()
        handle = BrokerHandle(flags, workdir=workdir, redis_url=self.data.url, data_dir=None,
                              env=broker_environment())  # fmt: skip
        if listen:
            handle.listen = listen
        self.brokers.append(handle)
        handle.start()
        return handle

    def worker(self, name: str, concurrency: int = 4) -> WorkerProcess:
        worker = WorkerProcess(self, name, concurrency)
        self.workers.append(worker)
        return worker

    def client(self) -> Client:
        return Client(self.broker.address, timeout=10)

    def enqueue(self, task_ids: Iterable[str]) -> set[str]:
        """Enqueue with these ids; the ids the broker confirmed (a conflict means it did)."""
        requests = [TaskRequest(TASK_TYPE, b"", queue=QUEUE, task_id=i) for i in task_ids]
        with self.client() as client:
            results = client.enqueue_many(requests)
        return {request.task_id for request, result in zip(requests, results, strict=True)
                if not isinstance(result, Exception) or isinstance(result, TaskIdConflict)
                if request.task_id}  # fmt: skip

    def completions(self) -> Counter[str]:
        """How many times each task's handler ran to its end."""
        client = redis.Redis.from_url(self.ledger.url)
        try:
            return Counter(_text(item) for item in client.lrange(LEDGER_KEY, 0, -1))
        finally:
            client.close()

    def wait_completed(self, task_ids: set[str], timeout: float) -> bool:
        return wait_until(lambda: task_ids <= set(self.completions()), timeout)

    def active(self, worker: str | None = None) -> set[str]:
        """Ids of the tasks leased now (by ``worker`` only, if given), read from the data Redis."""
        client = redis.Redis.from_url(self.data.url, socket_timeout=1)
        try:
            ids = [_text(item) for item in client.zrange(self.keys.active(QUEUE), 0, -1)]
            if worker is None or not ids:
                return set(ids)
            records = client.hmget(self.keys.tasks(QUEUE), ids)
            return {i for i, raw in zip(ids, records, strict=True)
                    if raw is not None and record_fields(raw).get(b"w") == worker.encode()}
        finally:
            client.close()

    def stored(self, task_ids: set[str]) -> set[str]:
        """Those of ``task_ids`` the data Redis still holds (in any state)."""
        client = redis.Redis.from_url(self.data.url, socket_timeout=5)
        try:
            ordered = sorted(task_ids)
            found = client.hmget(self.keys.tasks(QUEUE), ordered)
            return {i for i, raw in zip(ordered, found, strict=True) if raw is not None}
        except redis.RedisError:
            return set()
        finally:
            client.close()

    def close(self) -> None:
        for worker in self.workers:
            worker.stop(timeout=10)
        for broker in self.brokers:
            broker.stop(timeout=10)
        self.data.stop()
        self.ledger.stop()


class ActiveSampler:
    """Collects every task seen leased (by one worker, if given) while a fault lasts (and for
    ``linger`` seconds after it, where a scenario needs a wider window)."""

    def __init__(self, lab: FaultLab, worker: str | None = None, linger: float = 0.0) -> None:
        self.lab = lab
        self.worker = worker
        self.linger = linger
        self.seen: set[str] = set()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ActiveSampler:
        self._sample()  # the state just before the fault
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(self.linger)
        self._done.set()
        self._thread.join()
        self._sample()

    def _sample(self) -> None:
        try:
            self.seen |= self.lab.active(self.worker)
        except redis.RedisError:
            pass  # the data Redis is down: its state is what the last sample saw

    def _run(self) -> None:
        while not self._done.wait(0.02):
            self._sample()
