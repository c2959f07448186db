"""The Lua scripts on a Redis Cluster: loaded on every primary, called on the primary of their
keys' slot, pipelined over several slots, and reloaded when a primary answers NOSCRIPT, without
running any call twice."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio
from cluster_testing import RedisClusterGroup

from leasq_broker.scripts import ReplicaAck, ReplicaAckOnCluster, ScriptCall, Scripts

# A probe script: counts its calls per key, so a call run twice shows.
PROBE = "return redis.call('INCR', KEYS[1])"


def probe_scripts(client: redis.asyncio.RedisCluster) -> Scripts:
    """The broker's Scripts, plus the probe (typed as the ``Redis`` it stands in for)."""
    scripts = Scripts(client)  # type: ignore[arg-type]
    scripts._source["probe"] = PROBE  # the transitions change with the storage layout
    return scripts


async def keys_on_every_primary(client: redis.asyncio.RedisCluster) -> dict[str, str]:
    """One queue-style key per primary: ``{node name: key}``."""
    found: dict[str, str] = {}
    index = 0
    while len(found) < len(client.get_primaries()):
        key = f"leasq:{{q{index}}}:probe"
        node = client.get_node_from_key(key)
        found.setdefault(node.name, key)
        index += 1
    return found


async def test_every_script_is_loaded_on_every_primary(
    redis_cluster: RedisClusterGroup, cluster_redis: redis.asyncio.RedisCluster
) -> None:
    scripts = probe_scripts(cluster_redis)
    await scripts.load()
    shas = list(scripts._sha.values())
    assert len(shas) > 10
    for port in redis_cluster.primaries():
        with redis_cluster.client(port) as node:
            assert all(node.script_exists(*shas)), port


async def test_calls_go_to_the_primary_of_their_slot_one_by_one_and_pipelined(
    cluster_redis: redis.asyncio.RedisCluster,
) -> None:
    scripts = probe_scripts(cluster_redis)
    await scripts.load()
    keys = list((await keys_on_every_primary(cluster_redis)).values())
    assert [await scripts.call("probe", [key], []) for key in keys] == [1, 1, 1]
    replies = await scripts.call_many([ScriptCall("probe", [key], []) for key in keys])
    assert replies == [2, 2, 2]
    # atomic cannot span slots on a cluster: the calls run one by one, each with its reply
    replies = await scripts.call_each([ScriptCall("probe", [key], []) for key in keys],
                                      atomic=True, also=[("SADD", f"{keys[0]}:also", "x")])
    assert replies == [3, 3, 3]


async def test_a_primary_that_lost_its_scripts_gets_them_again_and_no_call_runs_twice(
    redis_cluster: RedisClusterGroup, cluster_redis: redis.asyncio.RedisCluster
) -> None:
    scripts = probe_scripts(cluster_redis)
    await scripts.load()
    by_node = await keys_on_every_primary(cluster_redis)
    keys = list(by_node.values())
    flushed = cluster_redis.get_node_from_key(keys[0])
    with redis_cluster.client(int(flushed.port)) as node:
        node.script_flush()
        assert not node.script_exists(scripts._sha["probe"])[0]
    # a pipeline over every primary: only the refused call (flushed node) is repeated
    assert await scripts.call_many([ScriptCall("probe", [key], []) for key in keys]) == [1, 1, 1]
    with redis_cluster.client(int(flushed.port)) as node:
        node.script_flush()
    assert await scripts.call("probe", [keys[0]], []) == 2
    assert [int(await cluster_redis.get(key)) for key in keys] == [2, 1, 1]


def test_waiting_for_replicas_is_refused_on_a_cluster(
    cluster_redis: redis.asyncio.RedisCluster,
) -> None:
    with pytest.raises(ReplicaAckOnCluster, match="not supported with a Redis Cluster"):
        Scripts(cluster_redis, ReplicaAck(1, 1000))  # type: ignore[arg-type]
    Scripts(cluster_redis, ReplicaAck(0, 1000))  # type: ignore[arg-type]


async def test_calls_reach_a_primary_promoted_by_a_failover(
    redis_cluster: RedisClusterGroup, cluster_redis: redis.asyncio.RedisCluster
) -> None:
    scripts = probe_scripts(cluster_redis)
    await scripts.load()
    keys = list((await keys_on_every_primary(cluster_redis)).values())
    assert await scripts.call_many([ScriptCall("probe", [key], []) for key in keys]) == [1, 1, 1]
    old = int(cluster_redis.get_node_from_key(keys[0]).port)
    new = await asyncio.to_thread(redis_cluster.failover, old)
    assert await scripts.call("probe", [keys[0]], []) == 2
    assert await scripts.call_many([ScriptCall("probe", [key], []) for key in keys]) == [3, 2, 2]
    assert int(cluster_redis.get_node_from_key(keys[0]).port) == new
