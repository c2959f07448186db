"""Fixtures for group tests: the enqueue path and the groups use case on the private Redis, with
a manual clock, so that grace periods and max delays pass without waiting for them."""

from __future__ import annotations

import pytest
from group_testing import Replica, ReplicaFactory
from redis.asyncio import Redis
from store_testing import T0

from leasq_broker.clock import ManualClock
from leasq_broker.cluster_slots import is_cluster
from leasq_broker.edge.converters import encode_envelope, encode_group_parts
from leasq_broker.groups.service import Groups
from leasq_broker.groups.store import GroupStore
from leasq_broker.keys import Keys
from leasq_broker.producer import Producer, ProducerLimits
from leasq_broker.reader import TaskReader
from leasq_broker.scripts import Scripts
from leasq_broker.store import TaskStore


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
async def replica_factory(redis_client: Redis, clock: ManualClock) -> ReplicaFactory:
    """``replica_factory()``: a fresh replica's producer and groups use case on the emptied
    Redis, sharing the manual clock."""
    scripts = Scripts(redis_client)
    await scripts.load()
    keys = Keys("leasq", cluster=is_cluster(redis_client))

    def build() -> Replica:
        store = TaskStore(redis_client, scripts, keys)
        notes: list[int] = []
        store.on_group_due = notes.append
        producer = Producer(store, keys, clock, encode_envelope, ProducerLimits(1 << 20),
                            lambda queue: None, encode_group=encode_group_parts)
        reader = TaskReader(redis_client, keys)
        groups = Groups(GroupStore(redis_client, scripts, keys), reader, clock,
                        on_flushed=lambda queue: None)
        return Replica(producer, groups, store, reader, notes)

    return build


@pytest.fixture
def replica(replica_factory: ReplicaFactory) -> Replica:
    return replica_factory()
