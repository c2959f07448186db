"""taskiq with taskiq-redis's RedisStreamBroker (its acknowledging broker), no result backend."""

from __future__ import annotations

from taskiq_redis import RedisStreamBroker

from peers.base import QUEUE, Producer, in_flight
from peers.recorder import AsyncRecorder, redis_url

broker = RedisStreamBroker(url=redis_url(), queue_name=QUEUE)
_recorder = AsyncRecorder()


@broker.task(task_name="bench.noop")
async def noop() -> None:
    await _recorder.noop()


@broker.task(task_name="bench.probe")
async def probe(sent: float) -> None:
    await _recorder.probe(sent)


@broker.task(task_name="bench.crash")
async def crash() -> None:
    await _recorder.crash()


class TaskiqProducer(Producer):
    """``task.kiq()`` with 64 calls in flight (taskiq has no bulk enqueue)."""

    async def open(self) -> None:
        await broker.startup()

    async def close(self) -> None:
        await broker.shutdown()

    async def single(self, n: int) -> None:
        await in_flight(n, noop.kiq)

    async def probe(self, sent: float) -> None:
        await probe.kiq(sent)

    async def crash(self) -> None:
        await crash.kiq()


producer = TaskiqProducer
