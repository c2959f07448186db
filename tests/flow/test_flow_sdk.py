"""Flow control through the SDK (sync and asyncio) on a real broker: settings, concurrency
keys on enqueue, and get_task's ``blocked``."""

from __future__ import annotations

import pytest

from leasq_sdk import DEFAULT, AsyncClient, Client, InvalidArgument, RateLimit, TaskRequest

Q = "flow-sdk"


def test_sync_client_sets_reads_and_resets_flow_settings(client: Client) -> None:
    fresh = client.queue_settings(Q)
    assert (fresh.rate_limit, fresh.max_active, fresh.per_key_limit) == (None, 0, 1)
    set_ = client.update_queue_settings(Q, rate_limit=(100, 10), max_active=5, per_key_limit=2)
    assert (set_.rate_limit, set_.max_active, set_.per_key_limit) == (RateLimit(100, 10), 5, 2)
    assert set_.groups.max_size == 100
    alone = client.update_queue_settings(Q, rate_limit=2.5)
    assert (alone.rate_limit, alone.max_active) == (RateLimit(2.5, 3), 5)
    reset = client.update_queue_settings(Q, rate_limit=DEFAULT, max_active=DEFAULT,
                                         per_key_limit=DEFAULT)
    assert (reset.rate_limit, reset.max_active, reset.per_key_limit) == (None, 0, 1)
    with pytest.raises(InvalidArgument) as refused:
        client.update_queue_settings(Q, rate_limit=-1)
    assert refused.value.field == "settings.rate_limit.per_second"
    with pytest.raises(InvalidArgument) as refused:
        client.enqueue("t:x", queue=Q, concurrency_key="k" * 257)
    assert refused.value.field == "task.concurrency_key"


def test_sync_client_enqueues_with_a_key_and_reads_why_it_waits(client: Client) -> None:
    first = client.enqueue("t:x", queue=Q, concurrency_key="cust-1")
    client.enqueue_many([TaskRequest("t:x", queue=Q, concurrency_key="cust-1")])
    info = client.get_task(Q, first.id)
    assert info.concurrency_key == "cust-1"
    assert info.blocked is not None
    assert info.blocked.reason == "no_worker"
    assert info.blocked.last_lease_at is None


async def test_async_client_sets_flow_settings_and_sees_max_active(
    aclient: AsyncClient,
) -> None:
    got = await aclient.update_queue_settings(Q, max_active=3, per_key_limit=4)
    assert (got.max_active, got.per_key_limit) == (3, 4)
    assert (await aclient.queue_settings(Q)).max_active == 3
    with pytest.raises(InvalidArgument) as refused:
        await aclient.update_queue_settings(Q, max_active=1_000_001)
    assert refused.value.field == "settings.max_active"
    task = await aclient.enqueue("t:x", queue=Q, concurrency_key="c")
    info = await aclient.get_task(Q, task.id)
    assert (info.concurrency_key, info.blocked and info.blocked.reason) == ("c", "no_worker")
