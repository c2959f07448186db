"""Fixtures for schedule tests: the schedules use case on the private Redis, with a manual
clock, so that tests move through minutes, days and DST changes without waiting for them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from redis.asyncio import Redis
from store_testing import T0

from leasq_broker.clock import ManualClock
from leasq_broker.cluster_slots import is_cluster
from leasq_broker.edge.converters import encode_envelope
from leasq_broker.keys import Keys
from leasq_broker.producer import Producer, ProducerLimits
from leasq_broker.schedules.service import Schedules
from leasq_broker.schedules.store import ScheduleStore
from leasq_broker.scripts import Scripts
from leasq_broker.store import TaskStore

ScheduleReplica = Callable[[], Schedules]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
async def replica_factory(redis_client: Redis, clock: ManualClock) -> ScheduleReplica:
    """``replica_factory()``: a fresh Schedules use case (as one broker replica holds it) on
    the emptied Redis, sharing the manual clock."""
    scripts = Scripts(redis_client)
    await scripts.load()
    keys = Keys("leasq", cluster=is_cluster(redis_client))

    def build() -> Schedules:
        store = TaskStore(redis_client, scripts, keys)
        producer = Producer(store, keys, clock, encode_envelope, ProducerLimits(1 << 20),
                            lambda queue: None)
        return Schedules(ScheduleStore(redis_client, scripts, keys), store, producer, clock,
                         on_enqueued=lambda queue: None, on_changed=lambda: None)

    return build


@pytest.fixture
def schedules(replica_factory: ScheduleReplica) -> Schedules:
    return replica_factory()
