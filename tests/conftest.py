"""Shared fixtures: a private Redis, real broker subprocesses, and gRPC stubs on them.

Fixtures (see each docstring):
- ``redis_server`` (session): URL of a private redis-server on a free loopback port; with
  ``--redis-kind cluster`` (or ``LEASQ_TEST_REDIS_KIND=cluster``) the ``redis+cluster://`` URL
  of a private 6-node Redis Cluster instead (``cluster_testing``).
- ``redis_url``: that URL after FLUSHALL (on every primary), so every test starts empty.
- ``redis_client``: a ``redis.asyncio.Redis`` on ``redis_url`` (a ``RedisCluster`` on a cluster).

Tests that cannot run on a cluster by nature (embedded Redis, Sentinel, killing the single
Redis, ...) are marked ``@pytest.mark.single_redis`` and skipped in cluster mode.
- ``broker_factory``: ``broker_factory(**overrides) -> BrokerHandle``, a real
  ``python -m leasq_broker serve`` subprocess; every broker is stopped after the test.
- ``broker``: ``broker_factory()`` with defaults.
- ``client`` / ``aclient``: a sync / asyncio SDK client on ``broker``.
- ``grpc_channel`` / ``broker_stub`` / ``inspect_stub``: a ``grpc.aio`` channel to ``broker``
  and the generated stubs on it.
- ``local_logs`` (autouse): error-level records logged in the test process.

After every test, each broker and worker process a test started, and the test process itself,
are checked (see ``process_checks``): an unexpected exit code, error-level log line or
traceback fails the test at teardown. Declare what a test causes on purpose with
``handle.expect_log(...)`` / ``handle.expect_exit(...)``, ``local_logs.expect(...)``, or
``@pytest.mark.expect_log("text", ...)`` for every process of the test.

Never the shared Redis on port 6379: tests own every process they talk to.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import grpc.aio
import pytest
import redis
import redis.asyncio
from broker_process import (
    BrokerFactory,
    BrokerHandle,
    RedisProcess,
    broker_environment,
    overrides_to_flags,
)
from cluster_testing import RedisClusterGroup
from process_checks import LocalLogs, fail_on_problems, take_all_problems

from leasq.v1 import broker_service_pb2_grpc, inspect_service_pb2_grpc
from leasq_broker.redis_connection import parse_cluster_url
from leasq_sdk import AsyncClient, Client

REDIS_KINDS = ("single", "cluster")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--redis-kind", choices=REDIS_KINDS, default=None,
        help="the Redis the tests run on: one redis-server (single, the default) or a 6-node "
             "Redis Cluster (cluster); environment LEASQ_TEST_REDIS_KIND",
    )  # fmt: skip


def redis_kind(config: pytest.Config) -> str:
    """``single`` or ``cluster``: the option, else LEASQ_TEST_REDIS_KIND, else single."""
    kind = config.getoption("--redis-kind") or os.environ.get("LEASQ_TEST_REDIS_KIND", "single")
    if kind not in REDIS_KINDS:
        raise pytest.UsageError(f"LEASQ_TEST_REDIS_KIND={kind!r}: expected single or cluster")
    return str(kind)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "expect_log(*texts): error-level log lines or tracebacks containing one of "
        "these texts are caused on purpose (in any process the test checks)",
    )  # fmt: skip
    config.addinivalue_line(
        "markers", "single_redis(reason): needs one plain redis-server (embedded Redis, "
        "Sentinel, killing the Redis, ...); skipped with --redis-kind cluster",
    )  # fmt: skip


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In cluster mode, skip the tests marked ``single_redis``, saying why."""
    if redis_kind(config) != "cluster":
        return
    for item in items:
        marker = item.get_closest_marker("single_redis")
        if marker is not None:
            why = marker.args[0] if marker.args else "needs one plain redis-server"
            item.add_marker(pytest.mark.skip(reason=f"not on a Redis Cluster: {why}"))


def expected_logs(node: pytest.Item) -> list[str]:
    """The texts of every ``expect_log`` marker of this test (module and class ones too)."""
    return [text for marker in node.iter_markers("expect_log") for text in marker.args]


@pytest.fixture(autouse=True)
def local_logs(request: pytest.FixtureRequest) -> Iterator[LocalLogs]:
    """Error-level records of this process during the test; unexpected ones fail it at teardown,
    as do the unexpected exits and error lines of every process the test started."""
    logs = LocalLogs()
    logs.install()
    try:
        yield logs
    finally:
        logs.uninstall()
    patterns = expected_logs(request.node)
    problems = [*take_all_problems(patterns),
                *(f"this test process: {problem}" for problem in logs.unexpected(patterns))]
    fail_on_problems(problems, "processes of this test misbehaved")


@pytest.fixture(scope="session")
def redis_cluster_group(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RedisClusterGroup | None]:
    """In cluster mode, the session's 6-node Redis Cluster; else None."""
    if redis_kind(request.config) != "cluster":
        yield None
        return
    with RedisClusterGroup(tmp_path_factory.mktemp("cluster")).running() as group:
        yield group


@pytest.fixture(scope="session")
def redis_server(
    tmp_path_factory: pytest.TempPathFactory, redis_cluster_group: RedisClusterGroup | None
) -> Iterator[str]:
    """A private redis-server (``--save "" --appendonly no``) for the whole session; its URL.
    In cluster mode, the session cluster's ``redis+cluster://`` URL."""
    if redis_cluster_group is not None:
        yield redis_cluster_group.url
        return
    with RedisProcess(tmp_path_factory.mktemp("redis")).running() as url:
        yield url


@pytest.fixture(scope="session")
def signals_redis(
    redis_server: str, redis_cluster_group: RedisClusterGroup | None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """A plain Redis for the tests' own signalling (event lists that worker subprocesses push
    to), apart from the Redis under test: the session Redis on one redis-server, a private
    redis-server of its own in cluster mode (so the signals never depend on the cluster)."""
    if redis_cluster_group is None:
        yield redis_server
        return
    with RedisProcess(tmp_path_factory.mktemp("signals")).running() as url:
        yield url


@pytest.fixture
def redis_mode(redis_cluster_group: RedisClusterGroup | None) -> str:
    """What INFO's ``redis_mode`` says of the session Redis: ``standalone`` or ``cluster``."""
    return "standalone" if redis_cluster_group is None else "cluster"


@pytest.fixture
def redis_url(redis_server: str, redis_cluster_group: RedisClusterGroup | None) -> str:
    """The session Redis, emptied with FLUSHALL (on every primary) before the test."""
    if redis_cluster_group is not None:
        redis_cluster_group.flush()
        return redis_server
    client = redis.Redis.from_url(redis_server)
    try:
        client.flushall()
    finally:
        client.close()
    return redis_server


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    """An asyncio client on the (emptied) session Redis, closed after the test: a
    ``redis.asyncio.RedisCluster`` (typed as ``Redis``) in cluster mode."""
    if redis_url.startswith("redis+cluster://"):
        node_host, node_port = parse_cluster_url(redis_url).nodes[0]
        cluster = redis.asyncio.RedisCluster(host=node_host, port=node_port)
        # Learn the topology now: left to the first commands, concurrent first uses each
        # start it and tear down each other's connections (seen as AttributeErrors).
        await cluster.initialize()
        try:
            yield cluster  # type: ignore[misc]
        finally:
            await cluster.aclose()
        return
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def broker_factory(
    redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BrokerFactory]:
    """Start real brokers: ``broker_factory(**overrides) -> BrokerHandle``.

    Overrides are ``leasq serve`` flags in snake case (``lease_lost_cap=2``, ``auth_token="t"``,
    ``grace=1``; config names such as ``grace_seconds`` work too). By default the broker uses
    ``redis_url`` and listens on ``127.0.0.1:<free port>``; ``redis_url=None`` runs the embedded
    Redis under ``data_dir`` (a fresh temporary directory unless given). ``env={...}`` adds
    environment variables (LEASQ_* of the test process are never passed on). Logs go to
    ``handle.log_path``; a broker that fails to start raises with the tail of its log.
    """
    handles: list[BrokerHandle] = []

    def start(*, env: dict[str, str] | None = None, **overrides: object) -> BrokerHandle:
        options: dict[str, object] = {"redis_url": redis_url, "log_format": "json"}
        options.update(overrides)
        workdir = tmp_path_factory.mktemp("broker")
        data_dir: Path | None = None
        if options["redis_url"] is None:
            data_dir = Path(str(options.get("data_dir") or workdir / "data"))
            options["data_dir"] = data_dir
        handle = BrokerHandle(
            overrides_to_flags(options),
            workdir=workdir,
            redis_url=None if options["redis_url"] is None else str(options["redis_url"]),
            data_dir=data_dir,
            env=broker_environment(env),
        )
        handles.append(handle)
        handle.start()
        return handle

    try:
        yield start
    finally:
        for handle in handles:
            handle.stop()


@pytest.fixture
def broker(broker_factory: BrokerFactory) -> BrokerHandle:
    """A broker with default settings on the emptied session Redis."""
    return broker_factory()


@pytest.fixture
def client(broker: BrokerHandle) -> Iterator[Client]:
    """A sync SDK client on ``broker``."""
    with Client(broker.address) as sync_client:
        yield sync_client


@pytest.fixture
async def aclient(broker: BrokerHandle) -> AsyncIterator[AsyncClient]:
    """An asyncio SDK client on ``broker``."""
    async with AsyncClient(broker.address) as async_client:
        yield async_client


@pytest.fixture
async def grpc_channel(broker: BrokerHandle) -> AsyncIterator[grpc.aio.Channel]:
    """An insecure ``grpc.aio`` channel to ``broker``, closed after the test."""
    async with grpc.aio.insecure_channel(broker.address) as channel:
        yield channel


@pytest.fixture
def broker_stub(grpc_channel: grpc.aio.Channel) -> broker_service_pb2_grpc.BrokerServiceStub:
    """The generated BrokerService stub on ``grpc_channel``."""
    return broker_service_pb2_grpc.BrokerServiceStub(grpc_channel)


@pytest.fixture
def inspect_stub(grpc_channel: grpc.aio.Channel) -> inspect_service_pb2_grpc.InspectServiceStub:
    """The generated InspectService stub on ``grpc_channel``."""
    return inspect_service_pb2_grpc.InspectServiceStub(grpc_channel)
