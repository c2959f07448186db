"""Fixtures for broker-level tests: the Redis store on the session's private Redis."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest
from broker_process import BrokerHandle, broker_environment, overrides_to_flags
from process_checks import check_stopped
from redis.asyncio import Redis
from store_testing import T0, StoreEnv

from leasq_broker.clock import ManualClock
from leasq_broker.cluster_slots import is_cluster
from leasq_broker.keys import Keys
from leasq_broker.scripts import Scripts
from leasq_broker.store import TaskStore


@pytest.fixture
async def store_env(redis_client: Redis) -> StoreEnv:
    """A TaskStore (lease-lost cap 3) on the emptied private Redis, with a manual clock."""
    scripts = Scripts(redis_client)
    await scripts.load()
    keys = Keys("leasq", cluster=is_cluster(redis_client))
    return StoreEnv(redis_client, TaskStore(redis_client, scripts, keys, lease_lost_cap=3), keys,
                    ManualClock(T0))


@pytest.fixture(scope="module")
def shared_broker(
    redis_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BrokerHandle]:
    """One broker for a whole module of tests that only need a broker, not an empty Redis.

    It uses its own key prefix on the session Redis, so other tests' FLUSHALL between its
    tests are the only interference, and its tests must not depend on state they did not make.
    Payload limit 2048 bytes, so that size rules are cheap to exercise.
    """
    workdir = tmp_path_factory.mktemp("shared-broker")
    flags = overrides_to_flags({"redis_url": redis_server, "log_format": "json",
                                "max_payload_bytes": 2048,
                                "key_prefix": f"shared{os.getpid()}{workdir.name}"})
    handle = BrokerHandle(flags, workdir=workdir, redis_url=redis_server, data_dir=None,
                          env=broker_environment(None))
    handle.start()
    try:
        yield handle
    finally:
        handle.stop()
    check_stopped(handle)


@pytest.fixture
async def shared_channel(shared_broker: BrokerHandle) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(shared_broker.address) as channel:
        yield channel
