"""A real Redis Cluster for tests: six ``redis-server`` processes (three primaries, one replica
each) on free loopback ports, each in a directory of its own under ``workdir``.

``RedisClusterGroup.start()`` returns once ``redis-cli --cluster create`` has assigned the slots
and every node reports ``cluster_state:ok`` with all 16384 slots covered and the same number of
primaries and replicas. ``failover(primary)`` runs ``CLUSTER FAILOVER`` on one of that primary's
replicas and waits until their roles swapped; ``kill(port)`` sends SIGKILL to one node.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import redis
import redis.asyncio
from broker_process import ProcessStartError, log_tail, stop_processes
from sentinel_testing import _wait

from leasq_broker.embedded_redis import find_redis_server, free_loopback_port

NODES = 6
SLOTS = 16384
# A node unreachable this long is failing (replicas then take over its slots).
NODE_TIMEOUT_MS = 2000
START_TIMEOUT_S = 60.0
FAILOVER_TIMEOUT_S = 30.0
HOST = "127.0.0.1"
# Each node also listens on its port + 10000 (the cluster bus), so ports stop there.
BUS_OFFSET = 10000
MAX_PORT = 65535 - BUS_OFFSET
# Nodes started again because their free port was taken before they bound it.
MAX_RESPAWNS = 3


def free_cluster_port() -> int:
    """A free loopback port whose cluster bus port (+10000) is free as well."""
    while True:
        port = free_loopback_port()
        if port > MAX_PORT:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((HOST, port + BUS_OFFSET))
            except OSError:
                continue
        return port


async def cluster_client(group: RedisClusterGroup) -> redis.asyncio.RedisCluster:
    """A connected ``redis.asyncio.RedisCluster`` on ``group`` (close it with ``aclose()``)."""
    client = redis.asyncio.RedisCluster(host=HOST, port=group.ports[0])
    await client.initialize()
    return client


class RedisClusterGroup:
    """Six cluster-enabled redis-servers under ``workdir``; stop() ends them all."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self._respawns = 0

    @property
    def ports(self) -> list[int]:
        return list(self.processes)

    @property
    def url(self) -> str:
        """The broker's ``--redis-url``: every node as a startup node."""
        return "redis+cluster://" + ",".join(f"{HOST}:{port}" for port in self.ports)

    @property
    def logs(self) -> list[Path]:
        return [self.workdir / f"node-{port}.log" for port in self.ports]

    def client(self, port: int) -> redis.Redis:
        """A plain (non-cluster) client on one node."""
        return redis.Redis(host=HOST, port=port, socket_connect_timeout=1, socket_timeout=5)

    def start(self) -> RedisClusterGroup:
        for _ in range(NODES):
            self._spawn()
        _wait(self._all_answer, START_TIMEOUT_S, "the cluster nodes never answered", self.logs)
        created = subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"{HOST}:{port}" for port in self.ports),
             "--cluster-replicas", "1", "--cluster-yes"],
            capture_output=True, text=True, timeout=START_TIMEOUT_S, check=False,
        )  # fmt: skip
        if created.returncode != 0:
            raise ProcessStartError(f"redis-cli --cluster create failed:\n{created.stdout}\n"
                                    f"{created.stderr}")  # fmt: skip
        _wait(self._ready, START_TIMEOUT_S, "the cluster never became ok", self.logs)
        return self

    def roles(self) -> dict[int, str]:
        """Each live node's role as it reports it (``master`` or ``slave``)."""
        roles = {}
        for port, process in self.processes.items():
            if process.poll() is None:
                with self.client(port) as client:
                    roles[port] = str(client.info("replication")["role"])
        return roles

    def primaries(self) -> list[int]:
        return sorted(port for port, role in self.roles().items() if role == "master")

    def replicas(self) -> list[int]:
        return sorted(port for port, role in self.roles().items() if role == "slave")

    def replicas_of(self, primary: int) -> list[int]:
        """The live replicas whose primary is ``primary``."""
        found = []
        for port in self.replicas():
            with self.client(port) as client:
                if int(client.info("replication")["master_port"]) == primary:
                    found.append(port)
        return found

    def failover(self, primary: int) -> int:
        """``CLUSTER FAILOVER`` on a replica of ``primary``; that replica's port, once it is a
        primary, ``primary`` its replica and the cluster ok again."""
        replica = self.replicas_of(primary)[0]
        with self.client(replica) as client:
            client.execute_command("CLUSTER", "FAILOVER")

        def swapped() -> bool:
            roles = self.roles()
            return roles[replica] == "master" and roles[primary] == "slave" and self._ready()

        _wait(swapped, FAILOVER_TIMEOUT_S, f"{replica} never took over from {primary}",
              self.logs)  # fmt: skip
        return replica

    def kill(self, port: int) -> None:
        """SIGKILL one node."""
        self.processes[port].send_signal(signal.SIGKILL)
        self.processes[port].wait()

    def flush(self) -> None:
        """FLUSHALL on every primary: an empty cluster, slot map unchanged."""
        for port in self.primaries():
            with self.client(port) as client:
                client.flushall()

    def stop(self) -> None:
        stop_processes(self.processes.values())

    @contextlib.contextmanager
    def running(self) -> Iterator[RedisClusterGroup]:
        """Started (and ready) for the ``with`` block, stopped after it."""
        try:
            yield self.start()
        finally:
            self.stop()

    def _spawn(self) -> None:
        port = free_cluster_port()
        data = self.workdir / f"node-{port}"
        data.mkdir()
        self.processes[port] = subprocess.Popen(
            [find_redis_server(), "--port", str(port), "--bind", HOST, "--cluster-enabled", "yes",
             "--cluster-config-file", str(data / "nodes.conf"),
             "--cluster-node-timeout", str(NODE_TIMEOUT_MS), "--save", "", "--appendonly", "no",
             "--repl-diskless-sync-delay", "0",
             "--dir", str(data), "--logfile", str(self.workdir / f"node-{port}.log")],
            cwd=data, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def _all_answer(self) -> bool:
        """Whether every node answers PING. A node whose free port was taken before it bound it
        (by another test process) is started again on another port, a few times at most."""
        for port, process in list(self.processes.items()):
            if process.poll() is not None:
                log = log_tail(self.workdir / f"node-{port}.log")
                if "Address already in use" not in log or self._respawns >= MAX_RESPAWNS:
                    raise ProcessStartError(f"cluster node {port} exited:\n{log}")
                del self.processes[port]
                self._respawns += 1
                self._spawn()
                return False
            with self.client(port) as client:
                client.ping()
        return True

    def _ready(self) -> bool:
        """Every live node says ok, covers all slots and sees every live node in the role that
        node reports, and every live replica is in sync with its primary (until then a
        CLUSTER FAILOVER is accepted but never completes)."""
        roles = self.roles()
        for port in roles:
            with self.client(port) as client:
                info = client.cluster("info")
                if info["cluster_state"] != "ok" or int(info["cluster_slots_ok"]) != SLOTS:
                    return False
                replication = client.info("replication")
                if (replication["role"] == "slave"
                        and replication.get("master_link_status") != "up"):
                    return False
                if self._seen_roles(client) != roles:
                    return False
        return True

    def _seen_roles(self, client: redis.Redis) -> dict[int, str]:
        """The role of each live node as ``client``'s node sees it (CLUSTER NODES)."""
        seen = {}
        raw = client.execute_command("CLUSTER", "NODES")
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        for line in text.splitlines():
            fields = line.split()
            port = int(fields[1].split("@")[0].rsplit(":", 1)[1])
            flags = fields[2].split(",")
            if "fail" in flags or "handshake" in flags or port not in self.processes:
                continue
            if self.processes[port].poll() is None:
                seen[port] = "master" if "master" in flags else "slave"
        return seen
