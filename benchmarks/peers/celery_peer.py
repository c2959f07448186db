"""Celery with its Redis transport, at its defaults (no result backend configured)."""

from __future__ import annotations

from celery import Celery

from peers.base import Producer
from peers.recorder import SyncRecorder, redis_url

app = Celery("bench", broker=redis_url())
app.conf.broker_connection_retry_on_startup = True  # the default; set to silence its warning
_recorder = SyncRecorder()


@app.task(name="bench.noop")
def noop() -> None:
    _recorder.noop()


@app.task(name="bench.probe")
def probe(sent: float) -> None:
    _recorder.probe(sent)


@app.task(name="bench.crash")
def crash() -> None:
    _recorder.crash()


class CeleryProducer(Producer):
    """``task.delay()``, one call after another (Celery has no bulk publish)."""

    async def single(self, n: int) -> None:
        for _ in range(n):
            noop.delay()

    async def probe(self, sent: float) -> None:
        probe.delay(sent)

    async def crash(self) -> None:
        crash.delay()


producer = CeleryProducer
