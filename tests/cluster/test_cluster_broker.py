"""A broker on ``redis+cluster://`` starts, serves health checks and GetServerInfo, and refuses
``--redis-min-replicas-ack`` (WAIT cannot follow a write on a cluster) at start, saying why."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc.aio
from broker_process import BrokerFactory, broker_environment
from cluster_testing import RedisClusterGroup
from grpc_health.v1 import health_pb2, health_pb2_grpc

from leasq.v1 import inspect_service_pb2 as ipb
from leasq.v1 import inspect_service_pb2_grpc
from leasq_broker.redis_connection import connect

SERVING = health_pb2.HealthCheckResponse.SERVING


def _health_stub(channel: grpc.aio.Channel) -> Any:
    """The health stub, untyped: its published stubs describe the sync API only."""
    return health_pb2_grpc.HealthStub(channel)  # type: ignore[no-untyped-call, unused-ignore]


async def test_a_broker_on_a_cluster_url_answers_health_and_server_info(
    redis_cluster: RedisClusterGroup, broker_factory: BrokerFactory
) -> None:
    broker = broker_factory(redis_url=redis_cluster.url)
    async with grpc.aio.insecure_channel(broker.address) as channel:
        for service in ("", "leasq.v1.BrokerService"):
            answer = await _health_stub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert answer.status == SERVING, service
        inspect = inspect_service_pb2_grpc.InspectServiceStub(channel)
        info = await inspect.GetServerInfo(ipb.GetServerInfoRequest(), timeout=5)
        assert info.redis.mode == "cluster"
    # the memory of every primary, summed (each uses about the same)
    largest = 0
    for port in redis_cluster.primaries():
        with redis_cluster.client(port) as node:
            largest = max(largest, int(node.info("memory")["used_memory"]))
    assert info.redis.used_memory_bytes > 2 * largest


def test_the_broker_refuses_replica_acks_on_a_cluster_at_start(
    redis_cluster: RedisClusterGroup,
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "leasq_broker", "serve", "--redis-url", redis_cluster.url,
         "--redis-min-replicas-ack", "1", "--listen", "127.0.0.1:0", "--log-format", "json"],
        capture_output=True, text=True, env=broker_environment(), timeout=60,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "--redis-min-replicas-ack is not supported with a Redis Cluster" in (
        done.stdout + done.stderr)


async def test_connect_gives_a_cluster_client_packing_with_hiredis(
    redis_cluster: RedisClusterGroup, tmp_path: Path
) -> None:
    async with connect(redis_cluster.url, tmp_path) as connection:
        assert connection.is_cluster and connection.embedded is None
        client: Any = connection.client
        binary = b"\x00\xff\r\n$3\r\n*" * 100
        for queue in ("{app}.mail", "{app}.sms", "other"):
            await client.set(f"leasq:{{{queue}}}:probe", binary)
            assert await client.get(f"leasq:{{{queue}}}:probe") == binary
        nodes = client.get_nodes()
        assert len(nodes) == 6
        assert all(node.connection_class.__name__.startswith("Hiredis") for node in nodes)
