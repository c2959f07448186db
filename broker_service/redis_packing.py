"""Commands packed for the wire by hiredis (C) instead of redis-py's pure-Python packer.

redis-py's asyncio connections pack every command in Python, argument by argument, joining a
growing buffer: an EnqueueBatch of 500 tasks is one script call of ~1,500 arguments, and that
packing cost more broker CPU per task than anything else on the path (about 14 us per task
against about 3 us with hiredis). redis-py's sync connections already use hiredis' packer when
hiredis is installed (it is: ``redis[hiredis]``); :func:`pack_with_hiredis` gives a client's
asyncio connections the same packer. The bytes on the wire are the same. A Redis Cluster
client has no single pool: its nodes (those known now and those it learns later) open
connections of the class in its nodes manager's connection arguments, which is replaced.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from leasq_broker.cluster_connections import swap_connection_class

try:
    from redis.connection import HiredisRespSerializer
    from redis.utils import HIREDIS_AVAILABLE
except ImportError:  # a redis-py without it: keep its own packer
    HIREDIS_AVAILABLE = False


def pack_with_hiredis(client: Redis) -> None:
    """Make the connections ``client`` opens from now on pack commands with hiredis (a no-op
    without hiredis). Call it before the client's first command."""
    if not HIREDIS_AVAILABLE:
        return
    pool = getattr(client, "connection_pool", None)
    nodes_manager = getattr(client, "nodes_manager", None)
    if pool is not None:
        pool.connection_class = _hiredis_class(pool.connection_class)
    elif nodes_manager is not None:  # redis.asyncio.RedisCluster
        swap_connection_class(client, _hiredis_class)  # type: ignore[arg-type]


def _hiredis_class(base: type[Any]) -> type[Any]:
    """A subclass of connection class ``base`` that packs commands with hiredis."""
    serializer = HiredisRespSerializer()

    def pack_command(self: Any, *args: Any) -> list[bytes]:
        packed: list[bytes] = serializer.pack(*args)
        return packed

    return type(f"Hiredis{base.__name__}", (base,), {"pack_command": pack_command})
