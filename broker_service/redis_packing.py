"""Commands packed for the wire by hiredis (C) instead of redis-py's pure-Python packer.

redis-py's asyncio connections pack every command in Python, argument by argument, joining a
growing buffer: an EnqueueBatch of 500 tasks is one script call of ~1,500 arguments, and that
packing cost more broker CPU per task than anything else on the path (about 14 us per task
against about 3 us with hiredis). redis-py's sync connections already use hiredis' packer when
hiredis is installed (it is: ``redis[hiredis]``); :func:`pack_with_hiredis` gives a client's
asyncio connections the same packer. The bytes on the wire are the same.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

try:
    from redis.connection import HiredisRespSerializer
    from redis.utils import HIREDIS_AVAILABLE
except ImportError:  # a redis-py without it: keep its own packer
    HIREDIS_AVAILABLE = False


def pack_with_hiredis(client: Redis) -> None:
    """Make the connections ``client`` opens from now on pack commands with hiredis (a no-op
    without hiredis). Call it before the client's first command."""
    pool = getattr(client, "connection_pool", None)
    if not HIREDIS_AVAILABLE or pool is None:
        return
    base = pool.connection_class
    serializer = HiredisRespSerializer()

    def pack_command(self: Any, *args: Any) -> list[bytes]:
        packed: list[bytes] = serializer.pack(*args)
        return packed

    pool.connection_class = type(f"Hiredis{base.__name__}", (base,),
                                 {"pack_command": pack_command})
