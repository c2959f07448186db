"""Real broker and Redis processes for tests: started, waited for, stopped, restarted.

The fixtures in ``conftest.py`` are the way to use these; import :class:`BrokerHandle` from here
for type hints (``from broker_process import BrokerHandle``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

import redis
from process_checks import Expectations, unexpected_lines, watch

from leasq_broker.cli import SERVE_FLAGS
from leasq_broker.embedded_redis import find_redis_server, free_loopback_port

START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 30.0
POLL_SECONDS = 0.02
LOG_TAIL_CHARS = 4000

# Config field names that differ from their flag (``grace_seconds=1`` means ``--grace 1``).
_FIELD_TO_FLAG = {"grace_seconds": "grace", "archive_max_age_seconds": "archive-max-age"}
_KNOWN_FLAGS = {flag.name for flag in SERVE_FLAGS}


class ProcessStartError(RuntimeError):
    """A broker or Redis process exited or did not become ready; the message has its log."""


def log_tail(path: Path) -> str:
    if not path.exists():
        return "(no log written)"
    return path.read_text(errors="replace")[-LOG_TAIL_CHARS:]


def overrides_to_flags(overrides: Mapping[str, object]) -> list[str]:
    """``lease_lost_cap=2`` -> ``["--lease-lost-cap", "2"]``; a None value leaves a flag out."""
    flags: list[str] = []
    for name, value in overrides.items():
        flag = _FIELD_TO_FLAG.get(name, name).replace("_", "-")
        if flag not in _KNOWN_FLAGS:
            raise TypeError(f"unknown broker option {name!r}; known: {sorted(_KNOWN_FLAGS)}")
        if value is not None:
            flags += [f"--{flag}", str(value)]
    return flags


def broker_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without LEASQ_* variables (they would change the flags)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEASQ_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


# Below Linux's ephemeral range (32768-60999): a port there could be taken by some outgoing
# connection between a stop and a restart of the same broker.
STABLE_PORTS = range(20000, 32000)


def stable_port() -> int:
    """A free loopback port outside the ephemeral range, so restarts can bind it again."""
    import random
    import socket

    for _ in range(100):
        port = random.choice(STABLE_PORTS)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free loopback port below the ephemeral range")


class BrokerHandle:
    """One ``python -m leasq_broker serve`` subprocess.

    ``address`` is ``host:port`` once started; :meth:`restart` keeps that port, so a client
    can reconnect to the same address. ``redis_url`` is the Redis the broker uses (for the
    embedded mode: the socket in its data dir). Stop and restart block; from a test that must
    keep its event loop running meanwhile, use :meth:`stop_async` / :meth:`restart_async`.

    Every handle is checked after each test (``process_checks``): a graceful stop must exit 0,
    an exit the test did not cause (a crash) fails, and so does an error-level line or a
    traceback in its log, unless the test declared it with :meth:`expect_log` /
    :meth:`expect_exit`. :meth:`kill` is never asked for its exit code, and a start that raised
    :class:`ProcessStartError` (which the test saw) is not checked further.
    """

    def __init__(
        self,
        flags: list[str],
        *,
        workdir: Path,
        redis_url: str | None,
        data_dir: Path | None,
        env: dict[str, str],
    ) -> None:
        self.flags = flags
        self.workdir = workdir
        self.log_path = workdir / "broker.log"
        self.ready_file = workdir / "ready"
        self.env = env
        self.data_dir = data_dir
        self.redis_url = redis_url
        self.listen = f"127.0.0.1:{stable_port()}"
        self.address = ""
        self.process: subprocess.Popen[bytes] | None = None
        self.expectations = Expectations()
        self._exit_problems: list[str] = []
        self._exit_checked: subprocess.Popen[bytes] | None = None  # its exit is accounted for
        self._log_checked = 0  # log offset up to which lines were checked
        self._unchecked: list[tuple[int, int]] = []  # log spans of failed starts

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start the broker and return once it serves (its ready file holds the address)."""
        if self.running:
            raise RuntimeError("broker already running")
        self.ready_file.unlink(missing_ok=True)
        command = [sys.executable, "-m", "leasq_broker", "serve", *self.flags,
                   "--listen", self.listen, "--ready-file", str(self.ready_file)]  # fmt: skip
        self._check_exit("exited")  # a process exited since; this start replaces it
        watch(self)
        with self.log_path.open("ab") as log:
            run_start = log.tell()
            log.write(f"--- {' '.join(command)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=self.env, cwd=self.workdir,
            )  # fmt: skip
        try:
            self.address = self._wait_ready()
        except ProcessStartError:
            # The test gets the exception with the log tail: this run is accounted for.
            self._exit_checked = self.process
            self._unchecked.append((run_start, self.log_path.stat().st_size))
            raise
        # Restarts keep the port, so that clients reconnect to the same address.
        self.listen = self.address
        if self.redis_url is None and self.data_dir is not None:
            self.redis_url = f"unix://{(self.data_dir / 'redis.sock').resolve()}"

    def _wait_ready(self) -> str:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not self.ready_file.exists():
            if self.process.poll() is not None:
                raise ProcessStartError(
                    f"broker exited with {self.process.returncode} before serving; log tail:\n"
                    + log_tail(self.log_path)
                )
            if time.monotonic() > deadline:
                self.kill()
                raise ProcessStartError("broker not ready in time; log tail:\n"
                                        + log_tail(self.log_path))  # fmt: skip
            time.sleep(POLL_SECONDS)
        return self.ready_file.read_text().strip()

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> int:
        """SIGTERM, then wait for a graceful exit (SIGKILL after ``timeout``); the exit code."""
        process = self.process
        if process is None:
            return 0
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                self._exit_problem(f"did not stop within {timeout:g}s of SIGTERM (killed)")
                self._exit_checked = process
            self._check_exit("stopped by SIGTERM")
        else:
            self._check_exit("exited before it was stopped")
        return int(process.returncode)

    def kill(self) -> None:
        """SIGKILL: a crash, no shutdown at all (a private Redis gets SIGTERM from the OS)."""
        process = self.process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
            self._exit_checked = process

    def restart(self) -> None:
        """Stop (if running) and start again with the same flags on the same port."""
        self.stop()
        self.start()

    async def stop_async(self) -> int:
        return await asyncio.to_thread(self.stop)

    async def restart_async(self) -> None:
        await asyncio.to_thread(self.restart)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def expect_log(self, *patterns: str) -> None:
        """Allow error-level lines and tracebacks containing one of ``patterns`` (until the
        next check, after this test)."""
        self.expectations.logs.extend(patterns)

    def expect_exit(self, *codes: int) -> None:
        """Allow these exit codes besides 0 (until the next check, after this test)."""
        self.expectations.exits.update(codes)

    def describe(self) -> str:
        return f"broker {self.address or self.listen} (log {self.log_path})"

    @property
    def finished(self) -> bool:
        return self.process is not None and self._exit_checked is self.process

    def take_problems(self, patterns: Iterable[str] = ()) -> list[str]:
        """Unexpected exits and error lines since the last call; resets the expectations."""
        if self.process is not None and not self.running:
            self._check_exit("exited before it was stopped")
        problems = self._exit_problems[:]
        self._exit_problems.clear()
        allowed = (*patterns, *self.expectations.logs)
        problems += unexpected_lines(self._new_log_lines(), allowed)
        self.expectations.reset()
        return problems

    def _new_log_lines(self) -> list[str]:
        """Complete lines written since the last look, without those of failed starts."""
        if not self.log_path.exists():
            return []
        with self.log_path.open("rb") as log:
            log.seek(self._log_checked)
            chunk = log.read()
        offset = self._log_checked
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self._log_checked += len(complete)
        lines: list[str] = []
        for raw in complete.splitlines(keepends=True):
            if not any(start <= offset < end for start, end in self._unchecked):
                lines.append(raw.decode(errors="replace").rstrip("\r\n"))
            offset += len(raw)
        return lines

    def _check_exit(self, how: str) -> None:
        process = self.process
        if process is None or process.returncode is None or self._exit_checked is process:
            return
        self._exit_checked = process
        problem = self.expectations.exit_problem(process.returncode, how)
        if problem is not None:
            self._exit_problem(problem)

    def _exit_problem(self, problem: str) -> None:
        self._exit_problems.append(problem)


class RedisProcess:
    """A private, throwaway redis-server on a free loopback port (no persistence)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> str:
        for _ in range(3):  # a free port can be taken between choosing and binding it
            self.port = free_loopback_port()
            self.process = subprocess.Popen(
                [find_redis_server(), "--port", str(self.port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--dir", str(self.workdir),
                 "--logfile", str(self.workdir / "redis.log"), "--daemonize", "no"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            if self._wait_ready():
                return self.url
        raise ProcessStartError("redis-server did not start; log tail:\n"
                                + log_tail(self.workdir / "redis.log"))  # fmt: skip

    def _wait_ready(self) -> bool:
        assert self.process is not None
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        try:
            while self.process.poll() is None and time.monotonic() < deadline:
                try:
                    if client.ping():
                        return True
                except redis.ConnectionError:
                    time.sleep(POLL_SECONDS)
            self.stop()
            return False
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None:
            stop_processes([self.process])

    @contextlib.contextmanager
    def running(self) -> Iterator[str]:
        """Started for the ``with`` block (its URL), stopped after it."""
        try:
            yield self.start()
        finally:
            self.stop()


def stop_processes(processes: Iterable[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every process still running, then wait for each (SIGKILL past the timeout)."""
    processes = list(processes)
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# The type of the ``broker_factory`` fixture: ``broker_factory(**overrides) -> BrokerHandle``.
BrokerFactory = Callable[..., BrokerHandle]
