"""arq: ``ArqRedis.enqueue_job`` with 64 in flight; the worker is the ``arq`` CLI."""

from __future__ import annotations

from typing import Any

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings

from peers.base import Producer, in_flight
from peers.recorder import AsyncRecorder, redis_url

_recorder = AsyncRecorder()


async def noop(ctx: dict[str, Any]) -> None:
    await _recorder.noop()


async def probe(ctx: dict[str, Any], sent: float) -> None:
    await _recorder.probe(sent)


async def crash(ctx: dict[str, Any]) -> None:
    await _recorder.crash()


class WorkerSettings:
    """arq's defaults except ``max_jobs``: 64 concurrent jobs, as every asyncio worker here."""

    functions = [noop, probe, crash]  # noqa: RUF012 - arq reads class attributes
    redis_settings = RedisSettings.from_dsn(redis_url())
    max_jobs = 64


# arq logs every job at INFO; every system here logs at WARNING.
LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler", "level": "WARNING"}},
    "loggers": {"arq": {"handlers": ["stderr"], "level": "WARNING"}},
}


class ArqProducer(Producer):
    """``enqueue_job`` with 64 calls in flight (arq has no bulk enqueue)."""

    def __init__(self) -> None:
        self._pool: ArqRedis | None = None

    @property
    def pool(self) -> ArqRedis:
        assert self._pool is not None
        return self._pool

    async def open(self) -> None:
        self._pool = await create_pool(RedisSettings.from_dsn(redis_url()))

    async def close(self) -> None:
        await self.pool.aclose()

    async def single(self, n: int) -> None:
        await in_flight(n, lambda: self.pool.enqueue_job("noop"))

    async def probe(self, sent: float) -> None:
        await self.pool.enqueue_job("probe", sent)

    async def crash(self) -> None:
        await self.pool.enqueue_job("crash")


producer = ArqProducer
