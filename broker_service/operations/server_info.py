"""GetServerInfo: the broker's version and start, and what its Redis reports about itself."""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.metadata
import time
from collections.abc import Mapping
from typing import Any

from redis.asyncio import Redis

from leasq_broker.cluster_slots import is_cluster
from leasq_broker.operations.models import KeyspaceEntry, RedisState, ServerState

#: When this broker process started (ms): the module is imported while the broker starts up.
PROCESS_STARTED_AT_MS = int(time.time() * 1000)
_DISTRIBUTION = "leasq"


def broker_version() -> str:
    """The installed leasq package's version ("unknown" when run from an uninstalled tree)."""
    try:
        return importlib.metadata.version(_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


async def read_server_state(redis: Redis) -> ServerState:
    """INFO, ``CONFIG GET appendfsync`` and ``CONFIG GET save`` in one pipelined round trip.
    Managed Redis services often rename or forbid CONFIG: ``aof_fsync`` and ``rdb_save`` are
    then empty, and the rest is still answered. On a Redis Cluster, every primary is asked
    (concurrently) and the figures are summed (:func:`cluster_state`)."""
    if is_cluster(redis):
        primaries = redis.get_primaries()  # type: ignore[attr-defined]
        states = await asyncio.gather(*(_node_state(redis, node) for node in primaries))
        state = cluster_state(states)
    else:
        pipe = redis.pipeline(transaction=False)
        pipe.info()
        pipe.config_get("appendfsync")
        pipe.config_get("save")
        info, fsync, save = await pipe.execute(raise_on_error=False)
        if isinstance(info, Exception):
            raise info
        state = redis_state(info, _config(fsync, "appendfsync"), _config(save, "save"))
    return ServerState(version=broker_version(), started_at_ms=PROCESS_STARTED_AT_MS,
                       redis=state)


async def _node_state(redis: Redis, node: Any) -> RedisState:
    """One cluster node's RedisState (INFO and the two CONFIG GETs sent to that node; the
    cluster client has no pipelines of node commands)."""
    cluster: Any = redis  # a RedisCluster: its commands take target_nodes
    info = await cluster.info(target_nodes=node)
    configs: tuple[Any, Any] = await asyncio.gather(
        cluster.config_get("appendfsync", target_nodes=node),
        cluster.config_get("save", target_nodes=node), return_exceptions=True)
    fsync, save = configs
    state = redis_state(info, _config(fsync, "appendfsync"), _config(save, "save"))
    return dataclasses.replace(state, name=str(node.name))


def cluster_state(nodes: list[RedisState]) -> RedisState:
    """A cluster's state from its primaries': counts and sizes summed, the rest the first
    primary's, and every primary listed in ``nodes``."""
    first = nodes[0]
    keyspace: dict[str, list[int]] = {}
    for node in nodes:
        for entry in node.keyspace:
            totals = keyspace.setdefault(entry.db, [0, 0])
            totals[0] += entry.keys
            totals[1] += entry.expires
    return dataclasses.replace(
        first, mode="cluster", name="",
        used_memory_bytes=sum(n.used_memory_bytes for n in nodes),
        peak_memory_bytes=sum(n.peak_memory_bytes for n in nodes),
        max_memory_bytes=sum(n.max_memory_bytes for n in nodes),
        connected_clients=sum(n.connected_clients for n in nodes),
        aof_enabled=all(n.aof_enabled for n in nodes),
        uptime_s=min(n.uptime_s for n in nodes),
        rdb_changes_since_save=sum(n.rdb_changes_since_save for n in nodes),
        connected_replicas=sum(n.connected_replicas for n in nodes),
        ops_per_second=sum(n.ops_per_second for n in nodes),
        total_commands=sum(n.total_commands for n in nodes),
        keyspace=tuple(KeyspaceEntry(db, keys, expires)
                       for db, (keys, expires) in sorted(keyspace.items())),
        nodes=tuple(nodes),
    )


def _config(reply: Any, name: str) -> str:
    """One ``CONFIG GET`` value, or "" when the server refused the command."""
    return "" if isinstance(reply, Exception) else str(reply.get(name, ""))


def redis_state(info: Mapping[str, Any], fsync: str, save: str) -> RedisState:
    """RedisState from a parsed INFO reply and the two configuration values."""

    def number(name: str) -> int:
        return int(info.get(name, 0) or 0)

    return RedisState(
        version=str(info.get("redis_version", "")),
        mode=str(info.get("redis_mode", "standalone")),
        used_memory_bytes=number("used_memory"),
        max_memory_bytes=number("maxmemory"),
        connected_clients=number("connected_clients"),
        aof_enabled=bool(number("aof_enabled")),
        aof_fsync=fsync,
        uptime_s=number("uptime_in_seconds"),
        peak_memory_bytes=number("used_memory_peak"),
        max_memory_policy=str(info.get("maxmemory_policy", "")),
        rdb_save=save,
        rdb_last_save_s=number("rdb_last_save_time"),
        rdb_changes_since_save=number("rdb_changes_since_last_save"),
        role=str(info.get("role", "")),
        connected_replicas=number("connected_slaves"),
        tcp_port=number("tcp_port"),
        ops_per_second=number("instantaneous_ops_per_sec"),
        total_commands=number("total_commands_processed"),
        fragmentation_ratio=float(info.get("mem_fragmentation_ratio", 0.0) or 0.0),
        keyspace=tuple(
            KeyspaceEntry(db, int(entry.get("keys", 0)), int(entry.get("expires", 0)))
            for db, entry in sorted(info.items())
            if db.startswith("db") and db[2:].isdigit() and isinstance(entry, Mapping)
        ),
    )
