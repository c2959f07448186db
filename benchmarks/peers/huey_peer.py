"""Huey with RedisHuey at its defaults (blocking pops); the worker is ``huey_consumer``."""

from __future__ import annotations

from huey import RedisHuey

from peers.base import QUEUE, Producer
from peers.recorder import SyncRecorder, redis_url

huey = RedisHuey(QUEUE, url=redis_url())
_recorder = SyncRecorder()


@huey.task()
def noop() -> None:
    _recorder.noop()


@huey.task()
def probe(sent: float) -> None:
    _recorder.probe(sent)


@huey.task()
def crash() -> None:
    _recorder.crash()


class HueyProducer(Producer):
    """Calling the task enqueues it, one call after another (Huey has no bulk enqueue)."""

    async def single(self, n: int) -> None:
        for _ in range(n):
            noop()

    async def probe(self, sent: float) -> None:
        probe(sent)

    async def crash(self) -> None:
        crash()


producer = HueyProducer
