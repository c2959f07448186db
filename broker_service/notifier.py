"""Wakes long-polling Lease calls the moment a task arrives on one of their queues.

Enqueue (and the forwarder and reclaimer) publish the queue's name on one pub/sub channel while
some broker marks the queue as waited on; every broker subscribes once and wakes its local
waiters of that queue. Enqueues through this broker wake local waiters directly as well, without
the pub/sub hop.

On a Redis Cluster, a PUBLISH on any node reaches the subscribers of every node, so one
subscription anywhere is enough; redis-py's cluster client routes commands, not pub/sub
sessions, so the listener opens a plain ``Redis`` on one node of the cluster (the nodes the
cluster client knows, primaries and replicas alike) and, when that node is lost, subscribes
on the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import structlog
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from leasq_broker.cluster_slots import is_cluster

log = structlog.get_logger(__name__)

RECONNECT_DELAY_S = 0.5


class Notifier:
    """Per-queue wake-ups for local waiters, fed by local enqueues and Redis pub/sub."""

    def __init__(self, redis: Redis, channel: str) -> None:
        self._redis = redis
        self._channel = channel
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        # Cluster only: how many node changes so far (picks the next node to listen on).
        self._attempt = 0
        self.node: str | None = None  # cluster only: "host:port" listened on (tests, logs)
        # Told of every queue woken (local enqueue or published), waiters or not: the pattern
        # index uses it to learn which queues may hold ready tasks.
        self.on_wake: Callable[[str], None] = lambda queue: None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="leasq-notifier")
        await self._subscribed.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def wake(self, queue: str) -> None:
        """Wake every local waiter of ``queue``."""
        self.on_wake(queue)
        for event in self._waiters.get(queue, ()):
            event.set()

    def wake_all(self) -> None:
        for events in self._waiters.values():
            for event in events:
                event.set()

    @contextlib.contextmanager
    def listen(self, queues: Sequence[str]) -> Iterator[asyncio.Event]:
        """An event set when any of ``queues`` gets a task; register before checking Redis."""
        event = asyncio.Event()
        for queue in queues:
            self._waiters.setdefault(queue, set()).add(event)
        try:
            yield event
        finally:
            for queue in queues:
                waiters = self._waiters.get(queue)
                if waiters is not None:
                    waiters.discard(event)
                    if not waiters:
                        del self._waiters[queue]

    def _pubsub(self) -> tuple[PubSub, Redis | None]:
        """A pub/sub session, and the single-node client to close with it (cluster only)."""
        if not is_cluster(self._redis):
            return self._redis.pubsub(ignore_subscribe_messages=True), None
        cluster: Any = self._redis
        # Known nodes (the client learns them at connect); before that, the startup nodes.
        known = cluster.get_nodes() or cluster.nodes_manager.startup_nodes.values()
        nodes = sorted(known, key=lambda node: node.name)
        node = nodes[self._attempt % len(nodes)]
        self._attempt += 1
        self.node = str(node.name)
        pool = ConnectionPool(connection_class=node.connection_class, **node.connection_kwargs)
        single = Redis(connection_pool=pool)
        return single.pubsub(ignore_subscribe_messages=True), single

    async def _listen(self) -> None:
        while True:
            pubsub, single = self._pubsub()
            try:
                await pubsub.subscribe(self._channel)
                self._subscribed.set()
                # A message may have been missed while (re)subscribing: let waiters re-check.
                self.wake_all()
                async for message in pubsub.listen():
                    if message and message.get("type") == "message":
                        self.wake(message["data"].decode())
            except (RedisConnectionError, RedisTimeoutError, OSError) as error:
                log.warning("notifier lost redis; resubscribing", error=str(error),
                            node=self.node)
                await asyncio.sleep(RECONNECT_DELAY_S)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                if single is not None:
                    with contextlib.suppress(Exception):
                        await single.aclose(close_connection_pool=True)
