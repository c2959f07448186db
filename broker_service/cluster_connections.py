"""Connections for redis-py's cluster client that report a closed stream as a ConnectionError.

After a failover, redis-py's asyncio ``RedisCluster`` refreshes its view of the cluster and
disconnects connections that other commands may be connecting or writing on at that moment.
Such a command then writes to a stream that is gone and fails with an ``AttributeError``
(``'NoneType' object has no attribute 'writelines'``): not a ``RedisError``, so it would reach
the gRPC edge as an unexpected error with a traceback. Nothing was sent when the write fails,
so it is the ``ConnectionError`` it looks like to a user: the cluster client retries it on the
new topology, and past its retries the broker answers ``UNAVAILABLE``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from redis.asyncio import RedisCluster
from redis.asyncio.connection import Connection, SSLConnection
from redis.exceptions import ConnectionError as RedisConnectionError


class _WriteGuard:
    """Mixed into a redis-py connection class ahead of it."""

    async def send_packed_command(
        self, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        try:
            await super().send_packed_command(command, check_health)  # type: ignore[misc]
        except AttributeError as error:  # the stream was closed under this write
            raise RedisConnectionError(
                "the connection was closed while the cluster topology was refreshed; "
                "nothing was sent") from error


class GuardedConnection(_WriteGuard, Connection):
    """A plain TCP connection with the guard."""


class GuardedSSLConnection(_WriteGuard, SSLConnection):
    """A TLS connection with the guard."""


def guard_writes(cluster: RedisCluster) -> None:
    """Make every connection ``cluster`` opens from now on a guarded one."""
    swap_connection_class(cluster, lambda base: (
        GuardedSSLConnection if issubclass(base, SSLConnection) else GuardedConnection))


def swap_connection_class(
    cluster: RedisCluster, wrap: Callable[[type[Any]], type[Any]]
) -> None:
    """Replace the connection class of every node ``cluster`` knows, and of those it discovers
    later (they are made from the connection settings changed here), by ``wrap(class)``.
    Call it before the client's first command."""
    manager: Any = cluster.nodes_manager
    kwargs = manager.connection_kwargs
    kwargs["connection_class"] = wrap(kwargs.get("connection_class", Connection))
    for node in [*manager.startup_nodes.values(), *manager.nodes_cache.values()]:
        node.connection_class = kwargs["connection_class"]
