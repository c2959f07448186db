"""Dramatiq with its RedisBroker at the defaults; the worker is the ``dramatiq`` CLI."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from peers.base import QUEUE, Producer
from peers.recorder import SyncRecorder, redis_url

broker = RedisBroker(url=redis_url())
dramatiq.set_broker(broker)
_recorder = SyncRecorder()


@dramatiq.actor(queue_name=QUEUE)
def noop() -> None:
    _recorder.noop()


@dramatiq.actor(queue_name=QUEUE)
def probe(sent: float) -> None:
    _recorder.probe(sent)


@dramatiq.actor(queue_name=QUEUE)
def crash() -> None:
    _recorder.crash()


class DramatiqProducer(Producer):
    """``actor.send()``, one call after another (Dramatiq has no bulk enqueue)."""

    async def single(self, n: int) -> None:
        for _ in range(n):
            noop.send()

    async def probe(self, sent: float) -> None:
        probe.send(sent)

    async def crash(self) -> None:
        crash.send()


producer = DramatiqProducer
