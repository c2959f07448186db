"""Fixtures for tests on a real Redis Cluster (see ``cluster_testing``).

``redis_cluster``: one 6-node cluster for the module (the session's own in ``--redis-kind
cluster`` mode), flushed before each test; a test may fail a primary over (the cluster stays
whole), but not kill a node.
``fresh_cluster``: a new cluster for one test that kills or fails over nodes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio
from cluster_testing import RedisClusterGroup, cluster_client


@pytest.fixture(scope="module")
def module_cluster(
    tmp_path_factory: pytest.TempPathFactory, redis_cluster_group: RedisClusterGroup | None
) -> Iterator[RedisClusterGroup]:
    if redis_cluster_group is not None:
        yield redis_cluster_group
        return
    with RedisClusterGroup(tmp_path_factory.mktemp("cluster")).running() as group:
        yield group


@pytest.fixture
def redis_cluster(module_cluster: RedisClusterGroup) -> RedisClusterGroup:
    """The module's cluster, emptied (FLUSHALL and SCRIPT FLUSH on every primary)."""
    module_cluster.flush()
    for port in module_cluster.primaries():
        with module_cluster.client(port) as client:
            client.script_flush()
    return module_cluster


@pytest.fixture
def fresh_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterGroup]:
    """A cluster of this test's own (it may kill nodes); stopped after the test."""
    with RedisClusterGroup(tmp_path_factory.mktemp("cluster")).running() as group:
        yield group


@pytest.fixture
async def cluster_redis(
    redis_cluster: RedisClusterGroup,
) -> AsyncIterator[redis.asyncio.RedisCluster]:
    """A ``RedisCluster`` client on the emptied ``redis_cluster``."""
    client = await cluster_client(redis_cluster)
    try:
        yield client
    finally:
        await client.aclose()
