"""GetServerInfo: the broker's version and start, and what its Redis reports about itself."""

from __future__ import annotations

import importlib.metadata
import time
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from leasq_broker.operations.models import RedisState, ServerState

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
    """INFO, plus ``CONFIG GET appendfsync`` where the server allows CONFIG (managed Redis
    services often rename or forbid it; ``aof_fsync`` is then empty)."""
    info: dict[str, Any] = await redis.info()
    try:
        config = await redis.config_get("appendfsync")
        fsync = str(config.get("appendfsync", ""))
    except ResponseError:
        fsync = ""
    return ServerState(
        version=broker_version(),
        started_at_ms=PROCESS_STARTED_AT_MS,
        redis=RedisState(
            version=str(info.get("redis_version", "")),
            mode=str(info.get("redis_mode", "standalone")),
            used_memory_bytes=int(info.get("used_memory", 0)),
            max_memory_bytes=int(info.get("maxmemory", 0)),
            connected_clients=int(info.get("connected_clients", 0)),
            aof_enabled=bool(int(info.get("aof_enabled", 0))),
            aof_fsync=fsync,
            uptime_s=int(info.get("uptime_in_seconds", 0)),
        ),
    )
