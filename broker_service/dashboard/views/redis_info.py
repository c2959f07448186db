"""The Redis screen: what the broker's Redis says about itself (version, memory, clients,
persistence, keyspace, the node it is), read with one pipelined round trip (INFO and two
CONFIG GETs) through :meth:`~leasq_broker.operations.service.Operations.server_state`.

On one Redis (standalone or a replica set's primary) the node list is that node; on a Redis
Cluster it lists every primary, and the cards show the primaries' sums (memory, clients,
commands, keys).
"""

from __future__ import annotations

from aiohttp import web

from leasq_broker.dashboard.access import viewer
from leasq_broker.dashboard.rendering import render
from leasq_broker.dashboard.routes import Routes, services

#: What each appendfsync policy can lose, as docs/reliability.md says it.
FSYNC_MEANING = {
    "always": "every write is fsynced before it is answered: nothing acknowledged is lost",
    "everysec": "fsynced once a second: a crash of the machine can lose about the last second",
    "no": "the OS decides when to flush: a crash of the machine can lose tens of seconds",
}


def register(routes: Routes) -> None:
    routes.get("redis", redis_page)


async def redis_page(request: web.Request) -> web.StreamResponse:
    who = viewer(request)
    dash = services(request)
    state = await dash.operations.server_state()
    redis = state.redis
    return render(request, "redis.html", who, server=state, redis=redis,
                  fsync_meaning=FSYNC_MEANING.get(redis.aof_fsync, ""),
                  rdb_rules=_save_rules(redis.rdb_save))  # fmt: skip


def _save_rules(save: str) -> list[str]:
    """``"3600 1 300 100"`` as ``["after 3600 s if 1 change", "after 300 s if 100 changes"]``."""
    numbers = save.split()
    return [
        f"after {seconds} s if {changes} change{'s' if changes != '1' else ''}"
        for seconds, changes in zip(numbers[::2], numbers[1::2], strict=False)
    ]
