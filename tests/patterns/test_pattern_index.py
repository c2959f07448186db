"""The pattern index on a real Redis (queues created through a real broker): what it learns
from the queue index and from probes, and whom it wakes."""

from __future__ import annotations

import asyncio
from typing import Any

from pattern_testing import fill, lease_of

from leasq.v1 import inspect_service_pb2 as ipb
from leasq.v1 import inspect_service_pb2_grpc
from leasq_broker.config import BrokerConfig
from leasq_broker.keys import Keys
from leasq_broker.patterns.index import PatternIndex
from leasq_broker.patterns.store import PatternStore


def index_on(redis_client: Any) -> PatternIndex:
    return PatternIndex(PatternStore(redis_client, Keys(BrokerConfig().key_prefix)))


async def test_first_use_probes_the_matched_queues_and_skips_paused_and_empty_ones(
    broker_stub: Any, grpc_channel: Any, redis_client: Any
) -> None:
    await fill(broker_stub, {"t.full": 2, "t.paused": 2, "t.drained": 1, "other": 1})
    await broker_stub.Lease(lease_of("t.drained"))
    inspect = inspect_service_pb2_grpc.InspectServiceStub(grpc_channel)
    await inspect.PauseQueue(ipb.PauseQueueRequest(queue="t.paused"))
    index = index_on(redis_client)
    matched = await index.matched("t.*")
    assert matched == ["t.drained", "t.full", "t.paused"]  # name order
    assert index.ready_among(matched) == ["t.full"]


async def test_a_hint_newer_than_a_lease_survives_its_short_answer(redis_client: Any) -> None:
    index = index_on(redis_client)
    index.hint("t.a")
    before = index.seq
    index.hint("t.a")  # a task arrived while the Lease was in flight
    index.came_back_short("t.a", before)
    assert index.ready_among(["t.a"]) == ["t.a"]
    index.came_back_short("t.a", index.seq)
    assert index.ready_among(["t.a"]) == []


async def test_a_new_queue_wakes_the_waiters_whose_patterns_match_it(
    broker_stub: Any, redis_client: Any
) -> None:
    index = index_on(redis_client)
    assert await index.matched("t.*") == []
    tenants, others = asyncio.Event(), asyncio.Event()
    with index.listen(["t.*"], tenants), index.listen(["x.*"], others):
        await fill(broker_stub, {"t.new": 1})  # through the broker: the index sees it on refresh
        await index.refresh_known()
        assert tenants.is_set() and not others.is_set()
    assert await index.matched("t.*") == ["t.new"]
    assert index.ready_among(["t.new"]) == ["t.new"]
