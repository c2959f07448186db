"""Leasq: the SDK's AsyncClient as producer, the ``leasq_worker`` CLI (asyncio) as worker."""

from __future__ import annotations

import os

from leasq_sdk import AsyncClient, LeasqError, TaskRequest
from leasq_worker import Registry, Task
from peers.base import QUEUE, Producer, in_flight
from peers.recorder import AsyncRecorder

registry = Registry()
_recorder = AsyncRecorder()


@registry.handler("bench:noop")
async def noop(task: Task) -> None:
    await _recorder.noop()


@registry.handler("bench:probe")
async def probe(task: Task) -> None:
    await _recorder.probe(float(task.payload))


@registry.handler("bench:crash")
async def crash(task: Task) -> None:
    await _recorder.crash()


class LeasqProducer(Producer):
    """``enqueue`` with 64 calls in flight; ``enqueue_many`` (1,000 tasks per RPC) for bulk."""

    has_bulk = True

    def __init__(self) -> None:
        self._client: AsyncClient | None = None

    @property
    def client(self) -> AsyncClient:
        assert self._client is not None
        return self._client

    async def open(self) -> None:
        self._client = AsyncClient(os.environ["BENCH_LEASQ_ADDRESS"])
        await self.client.list_queues()

    async def close(self) -> None:
        await self.client.close()

    async def single(self, n: int) -> None:
        await in_flight(n, lambda: self.client.enqueue("bench:noop", queue=QUEUE))

    async def bulk(self, n: int) -> None:
        requests = [TaskRequest("bench:noop", queue=QUEUE) for _ in range(n)]
        results = await self.client.enqueue_many(requests)
        failed = [r for r in results if isinstance(r, LeasqError)]
        if failed:
            raise RuntimeError(f"{len(failed)} tasks refused, e.g. {failed[0]}")

    async def pending(self) -> int:
        return (await self.client.queue_stats(QUEUE)).pending

    async def probe(self, sent: float) -> None:
        await self.client.enqueue("bench:probe", repr(sent).encode(), queue=QUEUE)

    async def crash(self) -> None:
        await self.client.enqueue("bench:crash", queue=QUEUE)


producer = LeasqProducer
