"""Fixtures for broker-level tests: the Redis store on the session's private Redis."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis
from store_testing import T0, StoreEnv

from leasq_broker.clock import ManualClock
from leasq_broker.keys import Keys
from leasq_broker.scripts import Scripts
from leasq_broker.store import TaskStore


@pytest.fixture
async def store_env(redis_client: Redis) -> StoreEnv:
    """A TaskStore (lease-lost cap 3) on the emptied private Redis, with a manual clock."""
    scripts = Scripts(redis_client)
    await scripts.load()
    keys = Keys("leasq")
    return StoreEnv(redis_client, TaskStore(redis_client, scripts, keys, lease_lost_cap=3), keys,
                    ManualClock(T0))
