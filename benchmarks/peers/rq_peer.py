"""RQ: ``Queue.enqueue`` and ``Queue.enqueue_many``; the worker is ``rq worker``."""

from __future__ import annotations

from redis import Redis
from rq import Queue

from peers.base import QUEUE, Producer
from peers.recorder import SyncRecorder, redis_url

_recorder = SyncRecorder()


def noop() -> None:
    _recorder.noop()


def probe(sent: float) -> None:
    _recorder.probe(sent)


def crash() -> None:
    _recorder.crash()


class RQProducer(Producer):
    """One ``enqueue`` after another; ``enqueue_many`` (one pipeline) for bulk."""

    has_bulk = True

    def __init__(self) -> None:
        self._queue = Queue(QUEUE, connection=Redis.from_url(redis_url()))

    async def open(self) -> None:
        self._queue.connection.ping()

    async def single(self, n: int) -> None:
        for _ in range(n):
            self._queue.enqueue(noop)

    async def bulk(self, n: int) -> None:
        self._queue.enqueue_many([Queue.prepare_data(noop) for _ in range(n)])

    async def pending(self) -> int:
        return self._queue.count

    async def probe(self, sent: float) -> None:
        self._queue.enqueue(probe, sent)

    async def crash(self) -> None:
        self._queue.enqueue(crash)


producer = RQProducer
