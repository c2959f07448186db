"""Long-poll wake-ups on a Redis Cluster: the notifier listens on one node, hears a PUBLISH made
on any other node, and moves to another node when the one it listened on dies."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio
from cluster_testing import HOST, RedisClusterGroup, cluster_client
from waiting import eventually

from leasq_broker.notifier import Notifier

CHANNEL = "leasq:notify"
WAKE_TIMEOUT_S = 10.0
MOVE_TIMEOUT_S = 20.0


def port_of(node_name: str | None) -> int:
    assert node_name is not None
    return int(node_name.rsplit(":", 1)[1])


async def publish_elsewhere(group: RedisClusterGroup, avoid: int, queue: str) -> int:
    """PUBLISH ``queue`` on a live node other than ``avoid``; the receivers the cluster
    counted (on that node)."""
    port = next(p for p in group.roles() if p != avoid)
    async with redis.asyncio.Redis(host=HOST, port=port) as node:
        return int(await node.publish(CHANNEL, queue))


async def subscribed_on(port: int) -> None:
    """Wait until node ``port`` counts a subscriber of the channel."""
    async with redis.asyncio.Redis(host=HOST, port=port) as node:

        async def subscribed() -> bool:
            counts = await node.pubsub_numsub(CHANNEL)
            return bool(counts and counts[0][1] == 1)

        await eventually(subscribed, MOVE_TIMEOUT_S, f"nobody subscribed on node {port}")


async def test_a_publish_on_another_node_wakes_the_waiters_of_its_queue(
    redis_cluster: RedisClusterGroup, cluster_redis: redis.asyncio.RedisCluster
) -> None:
    notifier = Notifier(cluster_redis, CHANNEL)  # type: ignore[arg-type]
    await notifier.start()
    try:
        listened = port_of(notifier.node)
        await subscribed_on(listened)
        with notifier.listen(["mail"]) as mail, notifier.listen(["sms"]) as sms:
            await publish_elsewhere(redis_cluster, listened, "mail")
            await asyncio.wait_for(mail.wait(), WAKE_TIMEOUT_S)
            assert not sms.is_set()
    finally:
        await notifier.stop()


@pytest.mark.expect_log("notifier lost redis")
async def test_the_notifier_moves_to_another_node_when_its_node_is_killed(
    fresh_cluster: RedisClusterGroup,
) -> None:
    client = await cluster_client(fresh_cluster)
    notifier = Notifier(client, CHANNEL)  # type: ignore[arg-type]
    await notifier.start()
    try:
        first = port_of(notifier.node)
        await subscribed_on(first)
        fresh_cluster.kill(first)

        async def moved() -> bool:
            return notifier.node != f"{HOST}:{first}"

        await eventually(moved, MOVE_TIMEOUT_S, f"the notifier never left node {first}")
        second = port_of(notifier.node)
        await subscribed_on(second)
        with notifier.listen(["mail"]) as mail, notifier.listen(["sms"]) as sms:
            await publish_elsewhere(fresh_cluster, second, "mail")
            await asyncio.wait_for(mail.wait(), WAKE_TIMEOUT_S)
            assert not sms.is_set()  # woken by the publish, not by the resubscription
    finally:
        await notifier.stop()
        await client.aclose()
