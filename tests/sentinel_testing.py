"""A real Sentinel deployment for tests: one primary, one replica and three sentinels, each a
``redis-server`` process on a free loopback port in a temporary directory.

``SentinelGroup.start()`` returns once the replica is in sync and every sentinel knows the
primary, the replica and the two other sentinels (so that a failover can be agreed on);
``kill_primary()`` sends SIGKILL to the primary, and ``wait_for_failover()`` returns the new
primary's address once a sentinel names it.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import redis
from broker_process import ProcessStartError, log_tail, stop_processes

from leasq_broker.embedded_redis import find_redis_server, free_loopback_port

SERVICE = "mymaster"
# Sentinels call the primary down after this long without an answer.
DOWN_AFTER_MS = 1000
# Also the pause before the sentinels try again when an election fails (twice this).
FAILOVER_TIMEOUT_MS = 3000
START_TIMEOUT_S = 30.0
POLL_S = 0.05


def _wait(check: Callable[[], bool], seconds: float, what: str, logs: list[Path]) -> None:
    """Poll ``check`` until true; else fail with ``what`` and the logs' tails."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except redis.RedisError:
            pass
        time.sleep(POLL_S)
    tails = "\n".join(f"--- {path.name}\n{log_tail(path)}" for path in logs)
    raise ProcessStartError(f"{what}: not within {seconds:g}s\n{tails}")


class SentinelGroup:
    """Primary, replica and three sentinels under ``workdir``; stop() ends them all."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.ports: dict[str, int] = {}

    @property
    def url(self) -> str:
        """The broker's ``--redis-url``: every sentinel, then the service."""
        hosts = ",".join(f"127.0.0.1:{self.ports[f'sentinel{i}']}" for i in range(3))
        return f"redis+sentinel://{hosts}/{SERVICE}"

    @property
    def logs(self) -> list[Path]:
        return [self.workdir / f"{name}.log" for name in self.processes]

    def client(self, name: str) -> redis.Redis:
        return redis.Redis(port=self.ports[name], socket_connect_timeout=1, socket_timeout=5)

    def start(self) -> SentinelGroup:
        self._redis("primary")
        self._redis("replica", "--replicaof", "127.0.0.1", str(self.ports["primary"]))
        _wait(self._replica_in_sync, START_TIMEOUT_S, "the replica never synced", self.logs)
        for i in range(3):
            self._sentinel(f"sentinel{i}")
        _wait(self._sentinels_ready, START_TIMEOUT_S, "the sentinels never found each other",
              self.logs)  # fmt: skip
        return self

    def primary_port(self) -> int:
        """The primary's port as the first sentinel that answers names it."""
        for i in range(3):
            try:
                with self.client(f"sentinel{i}") as client:
                    _, port = client.execute_command("SENTINEL", "get-master-addr-by-name",
                                                     SERVICE)  # fmt: skip
                    return int(port)
            except redis.RedisError:
                continue
        raise AssertionError("no sentinel answered")

    def kill_primary(self) -> None:
        """SIGKILL the current primary (whichever process it is now)."""
        port = self.primary_port()
        name = next(n for n, p in self.ports.items() if p == port)
        self.processes[name].send_signal(signal.SIGKILL)
        self.processes[name].wait()

    def wait_for_failover(self, old_port: int, seconds: float) -> int:
        """The new primary's port, once a sentinel names one other than ``old_port`` and it
        answers as a primary."""
        def promoted() -> bool:
            port = self.primary_port()
            if port == old_port:
                return False
            with redis.Redis(port=port, socket_connect_timeout=1) as client:
                return bool(client.info("replication")["role"] == "master")

        _wait(promoted, seconds, "no failover", self.logs)
        return self.primary_port()

    def stop(self) -> None:
        stop_processes(self.processes.values())

    def _spawn(self, name: str, args: list[str]) -> None:
        self.processes[name] = subprocess.Popen(
            [find_redis_server(), *args], cwd=self.workdir, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def _redis(self, name: str, *extra: str) -> None:
        port = self.ports[name] = free_loopback_port()
        data = self.workdir / name
        data.mkdir()
        self._spawn(name, ["--port", str(port), "--bind", "127.0.0.1", "--save", "",
                           "--appendonly", "no", "--dir", str(data),
                           "--logfile", str(self.workdir / f"{name}.log"), *extra])  # fmt: skip

    def _sentinel(self, name: str) -> None:
        port = self.ports[name] = free_loopback_port()
        config = self.workdir / f"{name}.conf"
        config.write_text("\n".join([
            f"port {port}", "bind 127.0.0.1", f"dir {self.workdir}",
            f"logfile {self.workdir / f'{name}.log'}",
            f"sentinel monitor {SERVICE} 127.0.0.1 {self.ports['primary']} 2",
            f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}",
            f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}",
            f"sentinel parallel-syncs {SERVICE} 1", "",
        ]))  # fmt: skip
        self._spawn(name, [str(config), "--sentinel"])

    def _replica_in_sync(self) -> bool:
        with self.client("replica") as client:
            return bool(client.info("replication").get("master_link_status") == "up")

    def _sentinels_ready(self) -> bool:
        for i in range(3):
            with self.client(f"sentinel{i}") as client:
                replicas = client.execute_command("SENTINEL", "replicas", SERVICE)
                others = client.execute_command("SENTINEL", "sentinels", SERVICE)
                if len(replicas) != 1 or len(others) != 2:
                    return False
        return True
