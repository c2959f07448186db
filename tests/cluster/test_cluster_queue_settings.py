"""Queue settings on a Redis Cluster: the update transaction (one slot) and the flow snapshot,
whose TIME cannot ride in a one-slot cluster transaction, both work."""

from __future__ import annotations

import redis.asyncio

from leasq_broker.keys import Keys
from leasq_broker.models import StoredTask
from leasq_broker.settings.models import FlowUpdate, QueueSettingsUpdate
from leasq_broker.settings.store import QueueSettingsStore


async def test_settings_update_and_flow_snapshot_run_on_a_cluster(
    cluster_redis: redis.asyncio.RedisCluster,
) -> None:
    store = QueueSettingsStore(cluster_redis, Keys())  # type: ignore[arg-type]
    settings = await store.update("{app}.mail", QueueSettingsUpdate(flow=FlowUpdate(max_active=3)))
    assert settings.flow.max_active == 3
    seconds, _ = await cluster_redis.time()
    snapshot = await store.snapshot(StoredTask("{app}.mail", "t1", b"", "pending"))
    assert snapshot.flow.max_active == 3 and snapshot.active == 0 and not snapshot.paused
    assert abs(snapshot.now_ms - seconds * 1000) < 60_000
