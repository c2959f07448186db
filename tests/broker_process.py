"""Real broker and Redis processes for tests: started, waited for, stopped, restarted.

The fixtures in ``conftest.py`` are the way to use these; import :class:`BrokerHandle` from here
for type hints (``from broker_process import BrokerHandle``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import redis

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
        with self.log_path.open("ab") as log:
            log.write(f"--- {' '.join(command)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=self.env, cwd=self.workdir,
            )  # fmt: skip
        self.address = self._wait_ready()
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
        return int(process.returncode)

    def kill(self) -> None:
        """SIGKILL: a crash, no shutdown at all (a private Redis gets SIGTERM from the OS)."""
        process = self.process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

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
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# The type of the ``broker_factory`` fixture: ``broker_factory(**overrides) -> BrokerHandle``.
BrokerFactory = Callable[..., BrokerHandle]
